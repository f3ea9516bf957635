/**
 * The query side of the wire format, parsed by hand: the hot path only needs the header, one
 * question and the EDNS OPT record, and a parser that never follows compression pointers
 * cannot be looped. Every length is checked against the packet before it is read.
 */

export const QTYPE = {
  A: 1,
  NS: 2,
  CNAME: 5,
  SOA: 6,
  PTR: 12,
  TXT: 16,
  AAAA: 28,
  SRV: 33,
  OPT: 41,
  IXFR: 251,
  AXFR: 252,
  MAILB: 253,
  MAILA: 254,
  ANY: 255,
} as const;

export const QCLASS = { IN: 1, CH: 3, HS: 4, NONE: 254, ANY: 255 } as const;

/** Response codes (the low 4 bits; BADVERS is extended through OPT). */
export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5, BADVERS: 16 } as const;
export type Rcode = (typeof RCODE)[keyof typeof RCODE];

export const OPCODE_QUERY = 0;

/** Header flag bits (in the 16-bit flags word). */
export const FLAG = { QR: 0x8000, AA: 0x0400, TC: 0x0200, RD: 0x0100, RA: 0x0080, AD: 0x0020, CD: 0x0010 } as const;

export const HEADER_SIZE = 12;
export const MAX_NAME_WIRE = 255;
/** Size of the OPT record we append: root name, type, class, TTL, RDLENGTH 0. */
export const OPT_SIZE = 11;
/** A record cannot be smaller than a root name plus type, class, TTL and RDLENGTH. */
const MIN_RR_SIZE = 11;

export interface Edns {
  udpSize: number;
  version: number;
  /** The DNSSEC OK bit, copied back as RFC 3225 asks. */
  dnssecOk: boolean;
}

/** A query that passed every check. */
export interface ParsedQuery {
  id: number;
  /** The query's flags word (RD and CD are copied into the answer). */
  flags: number;
  /** End of the question (after QTYPE and QCLASS); the question starts at 12. */
  questionEnd: number;
  /** End of QNAME. */
  nameEnd: number;
  qtype: number;
  qclass: number;
  /** Lower-cased (ASCII only) wire bytes of QNAME + QTYPE + QCLASS, as a latin1 string: the cache key. */
  key: string;
  edns: Edns | undefined;
}

/** Why a packet was not a usable query, and what to do about it. */
export type QueryProblem =
  /** Too short to answer, or a response: answering could feed a loop. */
  | { action: 'drop'; reason: string }
  /** Answer with this rcode; the question is echoed when `questionEnd` is set. */
  | { action: 'reply'; rcode: Rcode; id: number; flags: number; questionEnd: number | undefined; edns: Edns | undefined; reason: string };

export type ParseResult = { ok: true; query: ParsedQuery } | ({ ok: false } & QueryProblem);

/** Parses a query. Never throws, never reads past the packet, never follows a pointer. */
export function parseQuery(buf: Uint8Array): ParseResult {
  const len = buf.length;
  if (len < HEADER_SIZE) return { ok: false, action: 'drop', reason: 'shorter than a header' };
  const id = (buf[0]! << 8) | buf[1]!;
  const flags = (buf[2]! << 8) | buf[3]!;
  if (flags & FLAG.QR) return { ok: false, action: 'drop', reason: 'a response, not a query' };
  const qd = (buf[4]! << 8) | buf[5]!;
  const an = (buf[6]! << 8) | buf[7]!;
  const ns = (buf[8]! << 8) | buf[9]!;
  const ar = (buf[10]! << 8) | buf[11]!;
  const opcode = (flags >> 11) & 0xf;
  const fail = (rcode: Rcode, reason: string, questionEnd?: number, edns?: Edns): ParseResult => ({
    ok: false,
    action: 'reply',
    rcode,
    id,
    flags,
    questionEnd,
    edns,
    reason,
  });
  if (opcode !== OPCODE_QUERY) return fail(RCODE.NOTIMP, `opcode ${opcode} is not supported`);
  if (qd !== 1) return fail(RCODE.FORMERR, `QDCOUNT is ${qd}, expected 1`);

  // QNAME: uncompressed labels only (nobody compresses the only name in a query).
  let p = HEADER_SIZE;
  let wire = 0;
  for (;;) {
    if (p >= len) return fail(RCODE.FORMERR, 'question name runs past the packet');
    const l = buf[p]!;
    if (l === 0) {
      p++;
      wire++;
      break;
    }
    if (l > 63) return fail(RCODE.FORMERR, l >= 0xc0 ? 'compression pointer in the question' : 'invalid label type');
    wire += l + 1;
    if (wire >= MAX_NAME_WIRE) return fail(RCODE.FORMERR, 'question name longer than 255 bytes');
    p += l + 1;
  }
  const nameEnd = p;
  if (p + 4 > len) return fail(RCODE.FORMERR, 'question runs past the packet');
  const qtype = (buf[p]! << 8) | buf[p + 1]!;
  const qclass = (buf[p + 2]! << 8) | buf[p + 3]!;
  p += 4;
  const questionEnd = p;

  // The other sections: skipped in place; only OPT is read. Counts must be possible at all.
  const rrs = an + ns + ar;
  if (rrs * MIN_RR_SIZE > len - p) return fail(RCODE.FORMERR, 'record counts larger than the packet', questionEnd);
  let edns: Edns | undefined;
  for (let i = 0; i < rrs; i++) {
    const nameStart = p;
    p = skipName(buf, p);
    if (p < 0 || p + 10 > len) return fail(RCODE.FORMERR, 'record runs past the packet', questionEnd, edns);
    const type = (buf[p]! << 8) | buf[p + 1]!;
    const klass = (buf[p + 2]! << 8) | buf[p + 3]!;
    const rdlen = (buf[p + 8]! << 8) | buf[p + 9]!;
    if (type === QTYPE.OPT) {
      if (i < an + ns) return fail(RCODE.FORMERR, 'OPT outside the additional section', questionEnd);
      if (edns) return fail(RCODE.FORMERR, 'more than one OPT record', questionEnd);
      if (p !== nameStart + 1 || buf[nameStart] !== 0) return fail(RCODE.FORMERR, 'OPT owner is not the root', questionEnd);
      edns = { udpSize: klass, version: buf[p + 5]!, dnssecOk: (buf[p + 6]! & 0x80) !== 0 };
    }
    p += 10 + rdlen;
    if (p > len) return fail(RCODE.FORMERR, 'record data runs past the packet', questionEnd, edns);
  }
  if (qtype === QTYPE.OPT || (qtype >= 128 && qtype <= 250) || qtype === 0)
    return fail(RCODE.FORMERR, `QTYPE ${qtype} is not a query type`, questionEnd, edns);
  return { ok: true, query: { id, flags, questionEnd, nameEnd, qtype, qclass, key: questionKey(buf, questionEnd), edns } };
}

/** Returns the offset after a name without following pointers, or -1 when it is malformed. */
function skipName(buf: Uint8Array, p: number): number {
  const len = buf.length;
  let wire = 0;
  for (;;) {
    if (p >= len) return -1;
    const l = buf[p]!;
    if (l === 0) return p + 1;
    if (l >= 0xc0) return p + 2 <= len ? p + 2 : -1;
    if (l > 63) return -1;
    wire += l + 1;
    if (wire >= MAX_NAME_WIRE) return -1;
    p += l + 1;
  }
}

/** ASCII-only lower-casing of the question bytes; bytes >= 0x80 stay as they are (DNS case rules). */
function questionKey(buf: Uint8Array, end: number): string {
  let upper = false;
  for (let i = HEADER_SIZE; i < end; i++) {
    const c = buf[i]!;
    if (c >= 0x41 && c <= 0x5a) {
      upper = true;
      break;
    }
  }
  const src = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const s = src.toString('latin1', HEADER_SIZE, end);
  return upper ? s.replace(/[A-Z]+/g, (m) => m.toLowerCase()) : s;
}

/**
 * The labels of QNAME, lower-cased (ASCII). A label holding a dot, a space or a byte outside
 * printable ASCII cannot name anything we serve; it reads as "\0", which matches nothing.
 */
export function questionLabels(buf: Uint8Array, nameEnd: number): string[] {
  const labels: string[] = [];
  let p = HEADER_SIZE;
  while (p < nameEnd - 1) {
    const l = buf[p]!;
    let s = '';
    for (let i = p + 1; i <= p + l; i++) {
      let c = buf[i]!;
      if (c <= 0x20 || c >= 0x7f || c === 0x2e) {
        s = '\0';
        break;
      }
      if (c >= 0x41 && c <= 0x5a) c += 0x20;
      s += String.fromCharCode(c);
    }
    labels.push(s);
    p += l + 1;
  }
  return labels;
}

/** IPv4 or IPv6 text to its 4 or 16 bytes; undefined for anything else (a hostname). */
export function ipBytes(address: string): Buffer | undefined {
  const v4 = ipv4Bytes(address);
  if (v4) return v4;
  return address.includes(':') ? ipv6Bytes(address) : undefined;
}

export function ipv4Bytes(s: string): Buffer | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return undefined;
  const out = Buffer.alloc(4);
  for (let i = 0; i < 4; i++) {
    const part = m[i + 1]!;
    const n = Number(part);
    if (n > 255 || (part.length > 1 && part[0] === '0')) return undefined;
    out[i] = n;
  }
  return out;
}

export function ipv6Bytes(input: string): Buffer | undefined {
  let s = input;
  const pct = s.indexOf('%');
  if (pct >= 0) return undefined; // zone ids have no meaning outside the host
  const out = Buffer.alloc(16);
  // An embedded IPv4 tail (::ffff:1.2.3.4).
  let tail: Buffer | undefined;
  const lastColon = s.lastIndexOf(':');
  if (s.indexOf('.', lastColon) > 0) {
    tail = ipv4Bytes(s.slice(lastColon + 1));
    if (!tail) return undefined;
    s = s.slice(0, lastColon + 1) + '0:0';
  }
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const head = halves[0] ? halves[0].split(':') : [];
  const rest = halves.length === 2 ? (halves[1] ? halves[1].split(':') : []) : [];
  const groups = halves.length === 2 ? head.length + rest.length : head.length;
  if (halves.length === 1 ? groups !== 8 : groups > 7) return undefined;
  const all = [...head, ...new Array<string>(8 - groups).fill('0'), ...rest];
  for (let i = 0; i < 8; i++) {
    const g = all[i]!;
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
    out.writeUInt16BE(parseInt(g, 16), i * 2);
  }
  if (tail) tail.copy(out, 12);
  return out;
}

/** Text form of 4 or 16 address bytes (IPv6 compressed the way `net` prints it). */
export function ipText(b: Uint8Array): string {
  if (b.length === 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((b[i]! << 8) | b[i + 1]!);
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}
