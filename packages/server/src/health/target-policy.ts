import { errors, type CheckSpec } from '@beacon/core';
import { networkInterfaces } from 'node:os';
import { formatHostPort } from '../addr.js';
import type { CheckTargetScope } from '../registry/registry.js';
import { cidrContains, formatIp, inSpecialRange, HOST_RULE, parseCidr, parseHost, parseIp, sameIp, splitHostPort, type Cidr, type Host, type IpAddress } from './addr.js';

export interface CheckPolicyOptions {
  /** `--check-allow CIDR` (repeatable): ranges active checks may target besides the instance's own address. */
  allow?: readonly string[];
  /** `--enable-script-checks`. */
  enableScriptChecks?: boolean;
  /** This server's listeners, read when a check is judged (they are known only once bound). */
  ownListeners?: () => readonly Listener[];
}

/** The parts of a registration the policy looks at (structurally a NormalizedRegistration). */
export interface PolicySubject {
  spec: { address: string };
  checks: readonly CheckSpec[];
}

const LOCALHOST: readonly IpAddress[] = [parseIp('127.0.0.1')!, parseIp('::1')!];

/** An address this server listens on (HTTP, DNS); a listener on 0.0.0.0 or :: covers every local address. */
export interface Listener {
  address: string;
  port: number;
}

/** Where an active check connects, as written in its spec (IPv6 without brackets). */
export function checkTarget(check: CheckSpec): { host: string; port: number } | undefined {
  switch (check.kind) {
    case 'http': {
      if (!check.url) return undefined;
      try {
        const u = new URL(check.url);
        const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
        return { host, port: u.port ? Number(u.port) : u.protocol === 'https:' ? 443 : 80 };
      } catch {
        return undefined;
      }
    }
    case 'tcp':
    case 'grpc': {
      const hp = check.target ? splitHostPort(check.target) : undefined;
      return hp && { host: hp.host, port: hp.port };
    }
    case 'ttl':
    case 'script':
      return undefined;
  }
}

/**
 * Keeps the health checker from becoming a proxy into the private network. An active check may
 * target only:
 *  - the instance's own address (the same IP, IPv4-mapped IPv6 included; or, when the instance
 *    registered a host name, that same name),
 *  - any loopback address when the instance's address is itself loopback (same machine),
 *  - or an address inside a range the operator allowed with `--check-allow`.
 * A host name target other than the instance's own address is refused at registration. A name is
 * resolved when the check runs, every address it resolves to must pass {@link dialRefusal}, and
 * the runner dials exactly the address that passed (see CheckDialer), so a name that points at
 * the metadata service or at this server gets no further than an IP literal would. `localhost`
 * counts as loopback. Link-local addresses (cloud metadata lives there), unspecified and
 * multicast addresses, and this server's own listeners are refused even as the instance's own
 * address unless an allowed range covers them. Script checks are refused unless enabled. Ports
 * are not restricted otherwise.
 */
export class CheckTargetPolicy {
  private readonly allow: readonly Cidr[];
  readonly enableScriptChecks: boolean;
  private readonly listeners: () => readonly Listener[];

  constructor(opts: CheckPolicyOptions = {}) {
    this.allow = (opts.allow ?? []).map((text) => {
      const c = parseCidr(text.trim());
      if (!c) throw errors.invalid(`--check-allow ${JSON.stringify(text)} is not a CIDR range (e.g. 10.0.0.0/8 or fd00::/8)`);
      return c;
    });
    this.enableScriptChecks = !!opts.enableScriptChecks;
    this.listeners = opts.ownListeners ?? (() => []);
  }

  /** The allowed ranges, as given. */
  get allowed(): string[] {
    return this.allow.map((c) => c.text);
  }

  /**
   * Throws `forbidden` naming the check and the rule when a registration's checks may not run.
   * With scope `anywhere` (a caller with operator:write) a check may aim past the instance's own
   * address; the addresses refused at dial time (link-local, this server's listeners…) stay refused.
   */
  assertRegistration(reg: PolicySubject, scope: CheckTargetScope = 'instance'): void {
    for (const c of reg.checks) this.assertCheck(reg.spec.address, c, scope);
  }

  /** A function to hand to the registry as its `checkPolicy`. */
  asCheckPolicy(): (reg: PolicySubject, scope: CheckTargetScope) => void {
    return (reg, scope) => this.assertRegistration(reg, scope);
  }

  assertCheck(instanceAddress: string, check: CheckSpec, scope: CheckTargetScope = 'instance'): void {
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
        const target = checkTarget(check);
        if (!target) throw errors.invalid(`check ${check.id}: cannot tell which host the ${check.kind} check targets`);
        const host = parseHost(target.host);
        if (!host) throw errors.invalid(`check ${check.id}: target host ${JSON.stringify(target.host.slice(0, 80))} ${HOST_RULE}`);
        const refusal = this.refusal(instanceAddress, host, target.port, scope);
        if (refusal) throw errors.forbidden(`check ${check.id}: target ${target.host} ${refusal}`);
        return;
      }
    }
  }

  /**
   * Why a check may not connect to `ip:port` now, whatever name led there, or undefined when it
   * may. The runners ask this of every address a target resolves to, just before dialling.
   */
  dialRefusal(ip: IpAddress, port: number): string | undefined {
    if (this.allow.some((c) => cidrContains(c, ip))) return undefined;
    for (const range of ['linkLocal', 'unspecified', 'multicast'] as const) {
      if (inSpecialRange(ip, range))
        return `is a ${range === 'linkLocal' ? 'link-local' : range} address (${formatIp(ip)}); such targets are refused unless a range allowed with --check-allow covers them`;
    }
    if (this.isOwnListener(ip, port))
      return `is this server's own listener (${formatHostPort(formatIp(ip), port)}); checks may not call the registry itself unless a range allowed with --check-allow covers it`;
    return undefined;
  }

  /** Why a target is refused at registration, or undefined when it is allowed. */
  private refusal(instanceAddress: string, host: Host, port: number, scope: CheckTargetScope): string | undefined {
    const inst = parseHost(instanceAddress);
    const isLocalhost = (h: Host | undefined) => h?.kind === 'name' && h.text === 'localhost';
    if (host.kind === 'name' && !isLocalhost(host)) {
      // A name is judged when it runs: each address it resolves to must pass dialRefusal.
      if (inst?.text === host.text || scope === 'anywhere') return undefined;
      return `is a host name other than the instance's address ${instanceAddress}; use the instance's address or an IP literal inside a range allowed with --check-allow`;
    }
    const candidates = host.kind === 'ip' ? [host.ip] : LOCALHOST;
    // What `localhost` resolves to when it runs is not known here: refuse it if either address would be.
    for (const c of candidates) {
      const refused = this.dialRefusal(c, port);
      if (refused) return refused;
    }
    if (scope === 'anywhere') return undefined;
    const instIp = isLocalhost(inst) ? LOCALHOST[0]! : inst?.kind === 'ip' ? inst.ip : undefined;
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
    if (inst && sameIp(inst, ip)) return undefined;
    if (inst && inSpecialRange(inst, 'loopback') && inSpecialRange(ip, 'loopback')) return undefined;
    const rule = this.allow.length
      ? `is neither the instance's address ${instanceAddress} nor inside an allowed range (${this.allowed.join(', ')})`
      : `is not the instance's address ${instanceAddress}; an operator can allow other targets with --check-allow CIDR`;
    return `${rule}. Active checks may only probe the instance itself, so the registry cannot be used to reach other hosts`;
  }

  private isOwnListener(ip: IpAddress, port: number): boolean {
    return this.listeners().some((l) => {
      if (l.port !== port) return false;
      const bound = parseIp(l.address);
      if (!bound) return false;
      if (!inSpecialRange(bound, 'unspecified')) return sameIp(bound, ip);
      return inSpecialRange(ip, 'loopback') || localAddresses().some((a) => sameIp(a, ip));
    });
  }
}

/** This machine's interface addresses: what a listener bound to 0.0.0.0 or :: answers on. */
function localAddresses(): IpAddress[] {
  return Object.values(networkInterfaces())
    .flat()
    .map((i) => i && parseIp(i.address))
    .filter((ip): ip is IpAddress => !!ip);
}
