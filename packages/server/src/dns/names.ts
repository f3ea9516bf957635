import { isServiceName } from '@beacon/core';

/** What a query name asks for, relative to the configured domain. */
export type DnsName =
  | { kind: 'outside' }
  | { kind: 'apex' }
  /** `ns.<domain>`: the name our NS record points at. */
  | { kind: 'ns' }
  | { kind: 'service'; service: string; tags: readonly string[] }
  | { kind: 'node'; node: string }
  | { kind: 'addr'; address: Buffer }
  /** Inside the domain but names nothing we serve (another datacenter, bad form). */
  | { kind: 'unknown' };

const TYPES = new Set(['service', 'node', 'addr']);

/**
 * Parses lower-cased labels. Forms (dc optional everywhere):
 * `[<tag>.]*<svc>.service[.<dc>]`, `_<svc>._<tag|tcp>[.service][.<dc>]`,
 * `<node>.node[.<dc>]`, `<hex-ip>.addr[.<dc>]`, all under `<domain>`.
 */
export function parseName(labels: readonly string[], domain: readonly string[], datacenter: string): DnsName {
  const n = labels.length - domain.length;
  if (n < 0) return { kind: 'outside' };
  for (let i = 0; i < domain.length; i++) if (labels[n + i] !== domain[i]) return { kind: 'outside' };
  if (n === 0) return { kind: 'apex' };
  let rel = labels.slice(0, n);
  if (rel.length === 1 && rel[0] === 'ns') return { kind: 'ns' };

  if (rel[0]!.startsWith('_') && rel.length >= 2 && rel[1]!.startsWith('_')) return parseRfc2782(rel, datacenter);

  // An optional datacenter label after the type label.
  const last = rel[rel.length - 1]!;
  if (!TYPES.has(last)) {
    if (rel.length < 2 || !TYPES.has(rel[rel.length - 2]!)) return { kind: 'unknown' };
    if (last !== datacenter) return { kind: 'unknown' };
    rel = rel.slice(0, -1);
  }
  const type = rel[rel.length - 1]!;
  const before = rel.slice(0, -1);
  if (before.length === 0) return { kind: 'unknown' };
  switch (type) {
    case 'service': {
      const service = before[before.length - 1]!;
      if (!isServiceName(service)) return { kind: 'unknown' };
      return { kind: 'service', service, tags: before.slice(0, -1) };
    }
    case 'node':
      return { kind: 'node', node: before.join('.') };
    case 'addr': {
      if (before.length !== 1) return { kind: 'unknown' };
      const address = hexAddress(before[0]!);
      return address ? { kind: 'addr', address } : { kind: 'unknown' };
    }
    default:
      return { kind: 'unknown' };
  }
}

function parseRfc2782(rel: readonly string[], datacenter: string): DnsName {
  const rest = rel.slice(2);
  const ok =
    rest.length === 0 ||
    (rest.length === 1 && (rest[0] === 'service' || rest[0] === datacenter)) ||
    (rest.length === 2 && rest[0] === 'service' && rest[1] === datacenter);
  if (!ok) return { kind: 'unknown' };
  const service = rel[0]!.slice(1);
  const proto = rel[1]!.slice(1);
  if (!isServiceName(service) || !proto) return { kind: 'unknown' };
  // `_tcp` means "any tag", as in Consul; any other protocol label is a tag.
  return { kind: 'service', service, tags: proto === 'tcp' ? [] : [proto] };
}

/** `0a000001` → 10.0.0.1; 32 hex digits → an IPv6 address. */
export function hexAddress(label: string): Buffer | undefined {
  if ((label.length !== 8 && label.length !== 32) || !/^[0-9a-f]+$/.test(label)) return undefined;
  return Buffer.from(label, 'hex');
}

export function addressHex(ip: Uint8Array): string {
  return Buffer.from(ip.buffer, ip.byteOffset, ip.byteLength).toString('hex');
}

/** A hostname we can put in a record: LDH labels (and `_`), each 1–63, at most 253 in all. */
export function isHostname(s: string): boolean {
  return s.length > 0 && s.length <= 253 && /^([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*$/i.test(s);
}
