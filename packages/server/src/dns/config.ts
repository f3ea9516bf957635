import { errors, parseDuration } from '@beacon/core';
import { parseHostPort } from '../addr.js';

/** TTL rules for service answers: exact name, then the longest `prefix*`, then `*`, then the default. */
export interface TtlRules {
  exact: ReadonlyMap<string, number>;
  /** Longest prefix first. */
  prefixes: readonly (readonly [prefix: string, ttl: number])[];
  wildcard: number | undefined;
}

export interface DnsConfig {
  /** host:port for both UDP and TCP. */
  host: string;
  port: number;
  /** DNS over TLS (RFC 7858) listens here too, when set; the certificate is the server's, given apart (never sent to UDP workers). */
  tlsAddr: { host: string; port: number } | undefined;
  /** Lower-case, without the trailing dot; '' would be the root and is refused. */
  domain: string;
  /** Accepted as the optional datacenter label and written into SRV targets. */
  datacenter: string;
  /** Leave warning instances out too, not only those that are not ready. */
  onlyPassing: boolean;
  /** Seconds. */
  serviceTtl: TtlRules;
  /** Seconds, for `<node>.node`, `<hex>.addr`, NS and glue. */
  nodeTtl: number;
  /** Seconds: the SOA minimum and the SOA's own TTL, i.e. how long resolvers may cache a negative answer. */
  negativeTtl: number;
  /** Names outside the domain go here over UDP; without it they get REFUSED. */
  recursor: { host: string; port: number } | undefined;
  recursorTimeoutMs: number;
  /** The largest UDP answer we send, whatever a client advertises (DNS flag day 2020: 1232). */
  maxUdpSize: number;
  /** TCP connections open at once, server-wide. */
  tcpMaxConnections: number;
  /** … and from one client (an IPv4 address or an IPv6 /64), so one client cannot take them all. */
  tcpMaxConnectionsPerClient: number;
  /** How long a TCP connection may sit between frames. */
  tcpIdleTimeoutMs: number;
  /** How long one frame (length and message) may take to arrive, from its first byte. */
  tcpFrameTimeoutMs: number;
  /** Cached encoded answers: the byte budget, and how many shuffled orders are kept per answer. */
  cacheMaxBytes: number;
  permutations: number;
  /**
   * Processes answering UDP on the one socket (1 = only the server's). Extra processes answer
   * from a replica of the catalog that follows it over IPC (within about a millisecond).
   */
  udpProcesses: number;
  /** UDP responses per second to one client network (IPv4 /24, IPv6 /56); 0 turns rate limiting off. */
  rrlRate: number;
  /** Every `rrlSlip`-th limited response is sent as an empty TC reply, the others dropped; 0 drops them all. */
  rrlSlip: number;
}

/** What the CLI (flags) or a config file hands in: strings where an operator types strings. */
export interface DnsConfigInput {
  addr?: string;
  /** host:port of DNS over TLS (port 853 is its standard port). */
  tlsAddr?: string;
  domain?: string;
  datacenter?: string;
  onlyPassing?: boolean;
  /** `web=30s,api*=10s,*=5s`, a list of such items, or a map name → duration. */
  serviceTtl?: string | readonly string[] | Readonly<Record<string, string | number>>;
  nodeTtl?: string | number;
  negativeTtl?: string | number;
  recursor?: string;
  recursorTimeout?: string | number;
  maxUdpSize?: number;
  tcpMaxConnections?: number;
  tcpMaxConnectionsPerClient?: number;
  tcpIdleTimeout?: string | number;
  tcpFrameTimeout?: string | number;
  cacheMaxBytes?: number;
  permutations?: number;
  udpProcesses?: number;
  rrlRate?: number;
  rrlSlip?: number;
}

export const DNS_DEFAULTS = {
  addr: '127.0.0.1:8600',
  domain: 'consul.',
  datacenter: 'dc1',
  recursorTimeoutMs: 2_000,
  maxUdpSize: 1232,
  tcpMaxConnections: 256,
  tcpMaxConnectionsPerClient: 16,
  tcpIdleTimeoutMs: 10_000,
  // Knot's tcp-io-timeout is 500 ms: a query is one small segment, so this is generous.
  tcpFrameTimeoutMs: 2_000,
  cacheMaxBytes: 32 * 1024 * 1024,
  permutations: 16,
  udpProcesses: 1,
  rrlRate: 0,
  // BIND's default: every other limited response is a TC reply.
  rrlSlip: 2,
} as const;

const LABEL_RE = /^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$/;

/** Parses and validates DNS settings; throws `invalid_argument` naming the setting. */
export function parseDnsConfig(input: DnsConfigInput = {}): DnsConfig {
  const { host, port } = parseHostPort(input.addr ?? DNS_DEFAULTS.addr, 'DNS address');
  const domain = parseDomain(input.domain ?? DNS_DEFAULTS.domain);
  const datacenter = (input.datacenter ?? DNS_DEFAULTS.datacenter).toLowerCase();
  if (!LABEL_RE.test(datacenter)) throw errors.invalid(`invalid datacenter ${JSON.stringify(input.datacenter)}: use one DNS label`);
  const recursor = input.recursor ? parseRecursor(input.recursor) : undefined;
  return {
    host,
    port,
    tlsAddr: input.tlsAddr ? parseHostPort(input.tlsAddr, 'DNS over TLS address') : undefined,
    domain,
    datacenter,
    onlyPassing: input.onlyPassing ?? false,
    serviceTtl: parseTtlRules(input.serviceTtl),
    nodeTtl: seconds(input.nodeTtl ?? 0, 'node TTL'),
    negativeTtl: seconds(input.negativeTtl ?? 0, 'negative TTL'),
    recursor,
    recursorTimeoutMs: millis(input.recursorTimeout ?? DNS_DEFAULTS.recursorTimeoutMs, 'recursor timeout', 1, 60_000),
    maxUdpSize: int(input.maxUdpSize ?? DNS_DEFAULTS.maxUdpSize, 'max UDP size', 512, 65_535),
    tcpMaxConnections: int(input.tcpMaxConnections ?? DNS_DEFAULTS.tcpMaxConnections, 'TCP connection cap', 1, 1_000_000),
    tcpMaxConnectionsPerClient: int(input.tcpMaxConnectionsPerClient ?? DNS_DEFAULTS.tcpMaxConnectionsPerClient, 'TCP connections per client', 1, 1_000_000),
    tcpIdleTimeoutMs: millis(input.tcpIdleTimeout ?? DNS_DEFAULTS.tcpIdleTimeoutMs, 'TCP idle timeout', 1, 3_600_000),
    tcpFrameTimeoutMs: millis(input.tcpFrameTimeout ?? DNS_DEFAULTS.tcpFrameTimeoutMs, 'TCP frame timeout', 1, 3_600_000),
    cacheMaxBytes: int(input.cacheMaxBytes ?? DNS_DEFAULTS.cacheMaxBytes, 'cache size', 0, 2 ** 31),
    permutations: int(input.permutations ?? DNS_DEFAULTS.permutations, 'permutations', 1, 256),
    udpProcesses: int(input.udpProcesses ?? DNS_DEFAULTS.udpProcesses, 'UDP processes', 1, 16),
    rrlRate: int(input.rrlRate ?? DNS_DEFAULTS.rrlRate, 'RRL rate', 0, 1_000_000),
    rrlSlip: int(input.rrlSlip ?? DNS_DEFAULTS.rrlSlip, 'RRL slip', 0, 10),
  };
}

/** The TTL (seconds) of a service's answers. */
export function serviceTtlFor(rules: TtlRules, service: string): number {
  const exact = rules.exact.get(service);
  if (exact !== undefined) return exact;
  for (const [prefix, ttl] of rules.prefixes) if (service.startsWith(prefix)) return ttl;
  return rules.wildcard ?? 0;
}

export function parseTtlRules(input: DnsConfigInput['serviceTtl']): TtlRules {
  const exact = new Map<string, number>();
  const prefixes: [string, number][] = [];
  let wildcard: number | undefined;
  const entries: [string, string | number][] = [];
  if (typeof input === 'string' || Array.isArray(input)) {
    const items = (typeof input === 'string' ? [input] : (input as readonly string[])).flatMap((s) => s.split(','));
    for (const raw of items) {
      const item = raw.trim();
      if (!item) continue;
      const eq = item.lastIndexOf('=');
      if (eq <= 0) throw errors.invalid(`invalid service TTL ${JSON.stringify(item)}: use name=30s, prefix*=10s or *=5s`);
      entries.push([item.slice(0, eq).trim(), item.slice(eq + 1).trim()]);
    }
  } else if (input) {
    entries.push(...Object.entries(input));
  }
  for (const [rawName, value] of entries) {
    const name = rawName.toLowerCase();
    const ttl = seconds(value, `service TTL for ${rawName}`);
    if (name === '*') wildcard = ttl;
    else if (name.endsWith('*')) {
      const prefix = name.slice(0, -1);
      if (!/^[a-z0-9-]+$/.test(prefix)) throw errors.invalid(`invalid service TTL pattern ${JSON.stringify(rawName)}`);
      prefixes.push([prefix, ttl]);
    } else {
      if (!/^[a-z0-9-]+$/.test(name)) throw errors.invalid(`invalid service TTL pattern ${JSON.stringify(rawName)}`);
      exact.set(name, ttl);
    }
  }
  prefixes.sort((a, b) => b[0].length - a[0].length);
  return { exact, prefixes, wildcard };
}

function parseDomain(s: string): string {
  const d = s.trim().toLowerCase().replace(/\.$/, '');
  if (!d || d.length > 200 || !d.split('.').every((l) => LABEL_RE.test(l)))
    throw errors.invalid(`invalid DNS domain ${JSON.stringify(s)}: use labels like consul. or beacon.example.`);
  return d;
}

function parseRecursor(s: string): { host: string; port: number } {
  const t = s.trim();
  // A bare address means port 53.
  if (/^[0-9.]+$/.test(t) || (t.includes(':') && !t.includes('[') && !/^[^:]*:\d+$/.test(t))) return { host: t, port: 53 };
  const hp = parseHostPort(t, 'DNS recursor');
  if (hp.port === 0) throw errors.invalid(`invalid DNS recursor ${JSON.stringify(s)}: port 0`);
  return hp;
}

function seconds(v: string | number, what: string): number {
  const ms = typeof v === 'number' ? v * 1000 : /^\d+$/.test(v.trim()) ? Number(v) * 1000 : parseDuration(v);
  const s = Math.floor(ms / 1000);
  if (!Number.isFinite(s) || s < 0 || s > 2 ** 31 - 1) throw errors.invalid(`invalid ${what}: ${JSON.stringify(v)}`);
  return s;
}

function millis(v: string | number, what: string, min: number, max: number): number {
  let ms: number;
  try {
    ms = typeof v === 'number' ? v : parseDuration(v);
  } catch (err) {
    throw errors.invalid(`invalid ${what}: ${(err as Error).message}`);
  }
  if (!Number.isFinite(ms) || ms < min || ms > max) throw errors.invalid(`invalid ${what}: ${JSON.stringify(v)}`);
  return ms;
}

function int(v: number, what: string, min: number, max: number): number {
  if (!Number.isInteger(v) || v < min || v > max) throw errors.invalid(`invalid ${what}: ${v} (from ${min} to ${max})`);
  return v;
}
