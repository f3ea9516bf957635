import { lookup } from 'node:dns/promises';
import { errors } from '@beacon/core';
import { formatIp, HOST_RULE, parseHost, parseIp } from './addr.js';
import type { CheckTargetPolicy } from './target-policy.js';

/** Resolves a host name to every address it has (injected so unit tests need no DNS). */
export interface HostResolver {
  lookup(name: string): Promise<string[]>;
}

/** The system resolver (getaddrinfo: /etc/hosts, then DNS), every address in the order it gave them. */
export const systemResolver: HostResolver = {
  async lookup(name) {
    return (await lookup(name, { all: true, order: 'verbatim' })).map((a) => a.address);
  },
};

/** A fixed host table (tests, and names that must not depend on DNS); unknown names fail like getaddrinfo. */
export function staticResolver(entries: Readonly<Record<string, readonly string[]>>): HostResolver {
  return {
    async lookup(name) {
      const a = entries[name];
      if (!a) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${name}`), { code: 'ENOTFOUND' });
      return [...a];
    },
  };
}

/** Turns a check's target host into the one IP to connect to; rejects when the policy refuses it. */
export type Dial = (host: string, port: number) => Promise<string>;

/**
 * The last gate before a check connects: the host is resolved once, every address it resolves to
 * must pass the policy, and the caller dials exactly the address returned, so nothing between the
 * check and the socket (a second lookup, a resolver reading `0` or `2852039166` as an address, a
 * gRPC `unix:` scheme) can pick a different one.
 */
export class CheckDialer {
  constructor(
    private readonly policy: Pick<CheckTargetPolicy, 'dialRefusal'>,
    private readonly resolver: HostResolver = systemResolver,
  ) {}

  readonly dial: Dial = async (host, port) => {
    const h = parseHost(host);
    if (!h) throw errors.invalid(`target host ${JSON.stringify(host.slice(0, 80))} ${HOST_RULE}`);
    const texts = h.kind === 'ip' ? [h.text] : await this.resolver.lookup(h.text);
    if (!texts.length) throw errors.unavailable(`${h.text} resolves to no address`);
    const ips = texts.map((t) => {
      const ip = parseIp(t);
      if (!ip) throw errors.forbidden(`${h.text} resolves to ${t}, which is not an address a check may dial`);
      const refused = this.policy.dialRefusal(ip, port);
      if (refused) throw errors.forbidden(h.kind === 'ip' ? `target ${h.text} ${refused}` : `${h.text} resolves to ${formatIp(ip)}, which ${refused}`);
      return ip;
    });
    return formatIp(ips[0]!);
  };
}
