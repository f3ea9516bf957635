import { errors, type CheckSpec } from '@beacon/core';
import { cidrContains, formatIp, inSpecialRange, parseCidr, parseIp, sameIp, splitHostPort, type Cidr, type IpAddress } from './addr.js';

export interface CheckPolicyOptions {
  /** `--check-allow CIDR` (repeatable): ranges active checks may target besides the instance's own address. */
  allow?: readonly string[];
  /** `--enable-script-checks`. */
  enableScriptChecks?: boolean;
}

/** The parts of a registration the policy looks at (structurally a NormalizedRegistration). */
export interface PolicySubject {
  spec: { address: string };
  checks: readonly CheckSpec[];
}

const LOCALHOST: readonly IpAddress[] = [parseIp('127.0.0.1')!, parseIp('::1')!];

/** The host an active check connects to, as written in its spec (IPv6 without brackets). */
export function checkTargetHost(check: CheckSpec): string | undefined {
  switch (check.kind) {
    case 'http': {
      if (!check.url) return undefined;
      try {
        const h = new URL(check.url).hostname;
        return h.startsWith('[') ? h.slice(1, -1) : h;
      } catch {
        return undefined;
      }
    }
    case 'tcp':
    case 'grpc':
      return check.target ? splitHostPort(check.target)?.host : undefined;
    case 'ttl':
    case 'script':
      return undefined;
  }
}

function normalizeHostname(h: string): string {
  return h.toLowerCase().replace(/\.$/, '');
}

/**
 * Keeps the health checker from becoming a proxy into the private network. An active check may
 * target only:
 *  - the instance's own address (the same IP, IPv4-mapped IPv6 included; or, when the instance
 *    registered a hostname, that same hostname),
 *  - any loopback address when the instance's address is itself loopback (same machine),
 *  - or an address inside a range the operator allowed with `--check-allow`.
 * Hostnames are never resolved here: a hostname target other than the instance's own address is
 * refused, because what it resolves to can change after registration. `localhost` counts as
 * loopback (127.0.0.1 and ::1). Link-local addresses (cloud metadata lives there), unspecified
 * and multicast addresses are refused even as the instance's own address unless an allowed range
 * covers them. Script checks are refused unless enabled. Ports are not restricted.
 */
export class CheckTargetPolicy {
  private readonly allow: readonly Cidr[];
  readonly enableScriptChecks: boolean;

  constructor(opts: CheckPolicyOptions = {}) {
    this.allow = (opts.allow ?? []).map((text) => {
      const c = parseCidr(text.trim());
      if (!c) throw errors.invalid(`--check-allow ${JSON.stringify(text)} is not a CIDR range (e.g. 10.0.0.0/8 or fd00::/8)`);
      return c;
    });
    this.enableScriptChecks = !!opts.enableScriptChecks;
  }

  /** The allowed ranges, as given. */
  get allowed(): string[] {
    return this.allow.map((c) => c.text);
  }

  /** Throws `forbidden` naming the check and the rule when a registration's checks may not run. */
  assertRegistration(reg: PolicySubject): void {
    for (const c of reg.checks) this.assertCheck(reg.spec.address, c);
  }

  /** A function to hand to the registry as its `checkPolicy`. */
  asCheckPolicy(): (reg: PolicySubject) => void {
    return (reg) => this.assertRegistration(reg);
  }

  assertCheck(instanceAddress: string, check: CheckSpec): void {
    switch (check.kind) {
      case 'ttl':
        return;
      case 'script':
        if (!this.enableScriptChecks)
          throw errors.forbidden(`check ${check.id}: script checks are disabled on this server; an operator can enable them with --enable-script-checks`);
        return;
      case 'http':
      case 'tcp':
      case 'grpc': {
        const host = checkTargetHost(check);
        if (!host) throw errors.invalid(`check ${check.id}: cannot tell which host the ${check.kind} check targets`);
        const refusal = this.refusal(instanceAddress, host);
        if (refusal) throw errors.forbidden(`check ${check.id}: target ${host} ${refusal}`);
        return;
      }
    }
  }

  /** Why a target is refused, or undefined when it is allowed. */
  private refusal(instanceAddress: string, host: string): string | undefined {
    const isLocalhost = normalizeHostname(host) === 'localhost';
    const ip = parseIp(host);
    if (!ip && !isLocalhost) {
      if (normalizeHostname(host) === normalizeHostname(instanceAddress)) return undefined;
      return `is a hostname other than the instance's address ${instanceAddress}; hostnames are not resolved for checks, so use the instance's address or an IP literal inside a range allowed with --check-allow`;
    }
    const candidates = ip ? [ip] : LOCALHOST;
    const instIp = normalizeHostname(instanceAddress) === 'localhost' ? LOCALHOST[0]! : parseIp(instanceAddress);
    let last: string | undefined;
    for (const c of candidates) {
      last = this.refusalForIp(instIp, instanceAddress, c);
      // localhost is allowed when either loopback address is: both stay on this machine.
      if (!last) return undefined;
    }
    return last;
  }

  private refusalForIp(inst: IpAddress | undefined, instanceAddress: string, ip: IpAddress): string | undefined {
    if (this.allow.some((c) => cidrContains(c, ip))) return undefined;
    for (const range of ['linkLocal', 'unspecified', 'multicast'] as const) {
      if (inSpecialRange(ip, range))
        return `is a ${range === 'linkLocal' ? 'link-local' : range} address (${formatIp(ip)}); such targets are refused unless a range allowed with --check-allow covers them`;
    }
    if (inst && sameIp(inst, ip)) return undefined;
    if (inst && inSpecialRange(inst, 'loopback') && inSpecialRange(ip, 'loopback')) return undefined;
    const rule = this.allow.length
      ? `is neither the instance's address ${instanceAddress} nor inside an allowed range (${this.allowed.join(', ')})`
      : `is not the instance's address ${instanceAddress}; an operator can allow other targets with --check-allow CIDR`;
    return `${rule}. Active checks may only probe the instance itself, so the registry cannot be used to reach other hosts`;
  }
}
