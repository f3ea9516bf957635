/**
 * IP literals and CIDR ranges, parsed by hand so comparisons are exact: every address becomes
 * 16 bytes (IPv4 as an IPv4-mapped IPv6 address), which makes `::ffff:10.0.0.1` and `10.0.0.1`
 * the same host and lets one prefix test serve both families.
 */

export interface IpAddress {
  family: 4 | 6;
  /** 16 bytes; IPv4 is stored as ::ffff:a.b.c.d. */
  bytes: Uint8Array;
}

export interface Cidr {
  /** As given, for messages. */
  text: string;
  base: IpAddress;
  /** Prefix length over the 128-bit form (an IPv4 /8 is stored as /104). */
  bits: number;
}

const V4_MAPPED_PREFIX = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff];

/**
 * Dotted quad, no leading zeros ("010" is octal to some parsers and decimal to others). Scanned by
 * character: every registration's address passes here, and split + a regex per part allocated
 * more than the rest of the address check.
 */
function parseV4(s: string): number[] | undefined {
  const out: number[] = [];
  let n = -1;
  let digits = 0;
  for (let i = 0; i <= s.length; i++) {
    const c = i < s.length ? s.charCodeAt(i) : 46; // the end closes the last part like a '.'
    if (c === 46) {
      if (digits === 0 || n > 255 || out.length === 4) return undefined;
      out.push(n);
      n = -1;
      digits = 0;
    } else if (c >= 48 && c <= 57) {
      if (digits === 3 || n === 0) return undefined; // a fourth digit, or a digit after a leading 0
      n = n < 0 ? c - 48 : n * 10 + (c - 48);
      digits++;
    } else return undefined;
  }
  return out.length === 4 ? out : undefined;
}

function parseV6(s: string): number[] | undefined {
  if (s.includes('%')) return undefined; // zone ids name an interface, not a host
  let tail: number[] = [];
  let body = s;
  const lastColon = s.lastIndexOf(':');
  if (s.includes('.', lastColon)) {
    const v4 = parseV4(s.slice(lastColon + 1));
    if (!v4) return undefined;
    tail = v4;
    body = s.slice(0, lastColon + 1) + '0:0'; // placeholder groups, replaced below
  }
  const halves = body.split('::');
  if (halves.length > 2) return undefined;
  const groups = (h: string): number[] | undefined => {
    if (h === '') return [];
    const out: number[] = [];
    for (const g of h.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  const head = groups(halves[0]!);
  const rest = halves.length === 2 ? groups(halves[1]!) : [];
  if (!head || !rest) return undefined;
  let all: number[];
  if (halves.length === 2) {
    const missing = 8 - head.length - rest.length;
    if (missing < 1) return undefined;
    all = [...head, ...new Array<number>(missing).fill(0), ...rest];
  } else {
    all = head;
  }
  if (all.length !== 8) return undefined;
  const bytes: number[] = [];
  for (const g of all) bytes.push(g >> 8, g & 0xff);
  if (tail.length) bytes.splice(12, 4, ...tail);
  return bytes;
}

/** Parses an IPv4 or IPv6 literal (IPv6 may be in brackets). Returns undefined for anything else. */
export function parseIp(input: string): IpAddress | undefined {
  const s = input.startsWith('[') && input.endsWith(']') ? input.slice(1, -1) : input;
  const v4 = parseV4(s);
  if (v4) {
    const bytes = new Uint8Array(16);
    bytes.set(V4_MAPPED_PREFIX);
    bytes.set(v4, 12);
    return { family: 4, bytes };
  }
  const v6 = parseV6(s);
  if (!v6) return undefined;
  const bytes = Uint8Array.from(v6);
  // An IPv4-mapped IPv6 address is that IPv4 host.
  const mapped = V4_MAPPED_PREFIX.every((b, i) => bytes[i] === b);
  return { family: mapped ? 4 : 6, bytes };
}

function prefixMatch(a: Uint8Array, b: Uint8Array, bits: number): boolean {
  let i = 0;
  for (; bits >= 8; bits -= 8, i++) if (a[i] !== b[i]) return false;
  if (bits === 0) return true;
  const mask = (0xff << (8 - bits)) & 0xff;
  return (a[i]! & mask) === (b[i]! & mask);
}

/** Parses `a.b.c.d/n` or `x::y/n`; a bare address is a single-host range. */
export function parseCidr(text: string): Cidr | undefined {
  const slash = text.indexOf('/');
  const addr = slash < 0 ? text : text.slice(0, slash);
  const base = parseIp(addr);
  if (!base) return undefined;
  const isV4Text = parseV4(addr) !== undefined;
  const maxBits = isV4Text ? 32 : 128;
  let bits = maxBits;
  if (slash >= 0) {
    const p = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(p)) return undefined;
    bits = Number(p);
    if (bits > maxBits) return undefined;
  }
  return { text, base, bits: isV4Text ? bits + 96 : bits };
}

export function cidrContains(c: Cidr, ip: IpAddress): boolean {
  return prefixMatch(c.base.bytes, ip.bytes, c.bits);
}

export function sameIp(a: IpAddress, b: IpAddress): boolean {
  return prefixMatch(a.bytes, b.bytes, 128);
}

const SPECIAL = {
  loopback: ['127.0.0.0/8', '::1/128'],
  // Link-local ranges hold cloud metadata endpoints (169.254.169.254); AWS also serves it on
  // fd00:ec2::254, and a NAT64 gateway reaches 169.254/16 as 64:ff9b::a9fe:0/112.
  linkLocal: ['169.254.0.0/16', 'fe80::/10', 'fd00:ec2::254/128', '64:ff9b::169.254.0.0/112'],
  unspecified: ['0.0.0.0/8', '::/128'],
  multicast: ['224.0.0.0/4', 'ff00::/8', '255.255.255.255/32'],
} as const;

const SPECIAL_CIDRS = Object.fromEntries(
  Object.entries(SPECIAL).map(([k, list]) => [k, list.map((t) => parseCidr(t)!)]),
) as Record<keyof typeof SPECIAL, Cidr[]>;

export type SpecialRange = keyof typeof SPECIAL;

export function inSpecialRange(ip: IpAddress, range: SpecialRange): boolean {
  return SPECIAL_CIDRS[range].some((c) => cidrContains(c, ip));
}

/**
 * Formats an address in its canonical text form: IPv4 dotted decimal, IPv6 as RFC 5952 writes it
 * (lower case, the longest run of two or more zero groups as `::`), which is also what Node prints.
 */
export function formatIp(ip: IpAddress): string {
  const b = ip.bytes;
  if (ip.family === 4) return `${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((b[i]! << 8) | b[i + 1]!);
  let best = { at: -1, len: 1 };
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > best.len) best = { at: i, len: j - i };
    i = j === i ? i + 1 : j;
  }
  const hex = (from: number, to: number) => groups.slice(from, to).map((g) => g.toString(16)).join(':');
  return best.at < 0 ? hex(0, 8) : `${hex(0, best.at)}::${hex(best.at + best.len, 8)}`;
}

/** What a host in an address or a check target must be, for error messages. */
export const HOST_RULE =
  'is neither an IP literal nor a DNS host name (letters, digits, hyphens and underscores in dot-separated labels; IPv4 as four decimal numbers)';

/** A host as written in an address or a check target, once validated: an IP literal or a DNS name. */
export type Host = { kind: 'ip'; ip: IpAddress; text: string } | { kind: 'name'; text: string };

const LABEL_RE = /^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$/;

/**
 * Validates and canonicalises a host: an IP literal becomes its canonical text (`::FFFF:10.0.0.1`
 * → `10.0.0.1`, brackets dropped); a DNS name is lower-cased without a trailing dot. Returns
 * undefined for anything else. A name whose last label is a number (`2852039166`, `0xa9fea9fe`,
 * `169.254.43518`, `0251.0376.0251.0376`, `0`) is refused rather than taken as a name: resolvers
 * and URL parsers read those as IPv4 addresses, so the name the policy sees and the address Node
 * dials would differ.
 */
export function parseHost(input: string): Host | undefined {
  const ip = parseIp(input);
  // A dotted quad without brackets is already canonical (parseV4 takes no leading zeros): every
  // registration's address comes this way, so it keeps its string rather than format a new one.
  if (ip) return { kind: 'ip', ip, text: ip.family === 4 && !input.includes(':') && !input.startsWith('[') ? input : formatIp(ip) };
  const name = input.toLowerCase().replace(/\.$/, '');
  if (!name || name.length > 253) return undefined;
  const labels = name.split('.');
  if (!labels.every((l) => LABEL_RE.test(l))) return undefined;
  if (/^(\d+|0x[0-9a-f]*)$/.test(labels[labels.length - 1]!)) return undefined;
  return { kind: 'name', text: name };
}

/**
 * Splits `host:port[/rest]`, accepting `[v6]:port`. Returns undefined when the port is missing
 * or out of range.
 */
export function splitHostPort(target: string): { host: string; port: number; rest: string } | undefined {
  const m = /^(\[[^\]]+\]|[^\s:/[\]]+):(\d{1,5})(?:\/(.*))?$/.exec(target);
  if (!m) return undefined;
  const port = Number(m[2]);
  if (port < 1 || port > 65535) return undefined;
  const host = m[1]!.startsWith('[') ? m[1]!.slice(1, -1) : m[1]!;
  return { host, port, rest: m[3] ?? '' };
}
