import { isServiceName } from '@beacon/core';

/** What a query name asks for, relative to the configured domain. */
export type DnsName =
  | { kind: 'outside' }
  | { kind: 'apex' }
  /** `ns.<domain>`: the name our NS record points at. */
  | { kind: 'ns' }
  /** `dc`: another datacenter's service (absent for this server's own). */
  | { kind: 'service'; service: string; tags: readonly string[]; dc?: string }
  /** A prepared query by name (`<name>.query.<domain>`), executed with its failover. */
  | { kind: 'query'; query: string }
  | { kind: 'node'; node: string }
  | { kind: 'addr'; address: Buffer }
  /** Inside the domain but names nothing we serve (another datacenter, bad form). */
  | { kind: 'unknown' };

const TYPES = new Set(['service', 'node', 'addr', 'query']);
/** A datacenter label: another DC's names resolve through federation. */
const DC_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * Parses lower-cased labels. Forms (dc optional everywhere):
 * `[<tag>.]*<svc>.service[.<dc>]`, `_<svc>._<tag|tcp>[.service][.<dc>]`,
 * `<node>.node[.<dc>]`, `<hex-ip>.addr[.<dc>]`, `<name>.query`, all under `<domain>`. A service
 * name with another datacenter's label carries it in `dc`; node and addr names are this DC's only.
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
  let dc: string | undefined;
  if (!TYPES.has(last)) {
    if (rel.length < 2 || !TYPES.has(rel[rel.length - 2]!)) return { kind: 'unknown' };
    if (last !== datacenter) {
      if (!DC_LABEL.test(last)) return { kind: 'unknown' };
      dc = last;
    }
    rel = rel.slice(0, -1);
  }
  const type = rel[rel.length - 1]!;
  const before = rel.slice(0, -1);
  if (before.length === 0) return { kind: 'unknown' };
  // Only services are read across datacenters.
  if (dc !== undefined && type !== 'service') return { kind: 'unknown' };
  switch (type) {
    case 'service': {
      const service = before[before.length - 1]!;
      if (!isServiceName(service)) return { kind: 'unknown' };
      return { kind: 'service', service, tags: before.slice(0, -1), ...(dc !== undefined ? { dc } : {}) };
    }
    case 'query':
      return before.length === 1 ? { kind: 'query', query: before[0]! } : { kind: 'unknown' };
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
  let dcLabel: string | undefined;
  if (rest.length === 1 && rest[0] !== 'service') dcLabel = rest[0];
  else if (rest.length === 2 && rest[0] === 'service') dcLabel = rest[1];
  else if (rest.length > 2 || (rest.length === 2 && rest[0] !== 'service')) return { kind: 'unknown' };
  if (dcLabel !== undefined && !DC_LABEL.test(dcLabel)) return { kind: 'unknown' };
  const dc = dcLabel === datacenter ? undefined : dcLabel;
  const service = rel[0]!.slice(1);
  const proto = rel[1]!.slice(1);
  if (!isServiceName(service) || !proto) return { kind: 'unknown' };
  // `_tcp` means "any tag", as in Consul; any other protocol label is a tag.
  return { kind: 'service', service, tags: proto === 'tcp' ? [] : [proto], ...(dc !== undefined ? { dc } : {}) };
}

/** Names a UDP worker hands to the main process: what its replica of this DC's services cannot answer. */
export function answeredByMain(name: DnsName): boolean {
  return name.kind === 'node' || name.kind === 'query' || (name.kind === 'service' && name.dc !== undefined);
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
