import { TYPE_CODE, type ResourceRecord, type Sections } from './records.js';
import { FLAG, HEADER_SIZE } from './wire.js';

export interface EncodeInput {
  /** Flags word without ID; QR is always set. */
  flags: number;
  rcode: number;
  /** QNAME, QTYPE and QCLASS as they go on the wire, and QNAME's labels ("\0" for a label not to point at). */
  question: { wire: Uint8Array; labels: readonly string[] };
  sections: Sections;
}

export interface Encoded {
  bytes: Buffer;
  /** Records were left out because the message would pass `maxSize` (TC is set). */
  truncated: boolean;
}

const MAX_MESSAGE = 65_535;
const POINTER_LIMIT = 0x3fff;

/**
 * Encodes a message with name compression (dns-packet does none, and an SRV answer of five
 * instances would not fit in 512 bytes without it). Owner names point back at earlier names;
 * SRV targets are written in full as RFC 2782 asks, but later names may point into them.
 * Stops adding records (and sets TC) once the next one would pass `maxSize`.
 */
export class MessageWriter {
  private readonly buf: Buffer;
  private pos = 0;
  private readonly names = new Map<string, number>();

  constructor(private readonly maxSize = MAX_MESSAGE) {
    this.buf = Buffer.allocUnsafe(Math.min(maxSize, MAX_MESSAGE) + 512);
  }

  encode(input: EncodeInput): Encoded {
    this.pos = HEADER_SIZE;
    this.names.clear();
    const { question, sections } = input;
    this.question(question.wire, question.labels);
    let truncated = false;
    const counts = [0, 0, 0];
    const lists = [sections.answer, sections.authority, sections.additional];
    outer: for (let s = 0; s < 3; s++) {
      for (const rr of lists[s]!) {
        const mark = this.pos;
        const namesBefore = this.names.size;
        this.record(rr);
        if (this.pos > this.maxSize) {
          this.pos = mark;
          this.forgetFrom(mark, namesBefore);
          truncated = true;
          break outer;
        }
        counts[s]!++;
      }
    }
    const flags = (input.flags | FLAG.QR | (truncated ? FLAG.TC : 0)) & 0xfff0;
    this.buf.writeUInt16BE(0, 0);
    this.buf.writeUInt16BE(flags | (input.rcode & 0xf), 2);
    this.buf.writeUInt16BE(1, 4);
    this.buf.writeUInt16BE(counts[0]!, 6);
    this.buf.writeUInt16BE(counts[1]!, 8);
    this.buf.writeUInt16BE(counts[2]!, 10);
    return { bytes: Buffer.from(this.buf.subarray(0, this.pos)), truncated };
  }

  private record(rr: ResourceRecord): void {
    const d = rr.data;
    this.name(rr.name, true);
    this.u16(TYPE_CODE[d.type]);
    this.u16(1);
    this.u32(rr.ttl);
    const lenAt = this.pos;
    this.pos += 2;
    switch (d.type) {
      case 'A':
      case 'AAAA':
        this.bytes(d.address);
        break;
      case 'CNAME':
      case 'NS':
        this.name(d.target, true);
        break;
      case 'SRV':
        this.u16(d.priority);
        this.u16(d.weight);
        this.u16(d.port);
        this.name(d.target, false);
        break;
      case 'TXT':
        for (const s of d.strings) {
          this.u8(s.length);
          this.bytes(s);
        }
        break;
      case 'SOA':
        this.name(d.mname, true);
        this.name(d.rname, true);
        this.u32(d.serial);
        this.u32(d.refresh);
        this.u32(d.retry);
        this.u32(d.expire);
        this.u32(d.minimum);
        break;
      default: {
        const never: never = d;
        throw new Error(`unknown record ${JSON.stringify(never)}`);
      }
    }
    if (this.pos <= this.buf.length) this.buf.writeUInt16BE(this.pos - lenAt - 2, lenAt);
  }

  private question(wire: Uint8Array, labels: readonly string[]): void {
    this.bytes(wire);
    // Later names may point at any suffix of QNAME made only of labels we can name.
    let at = HEADER_SIZE;
    for (let i = 0; i < labels.length; i++) {
      const suffix = labels.slice(i);
      if (!suffix.includes('\0')) {
        const key = suffix.join('.');
        if (!this.names.has(key)) this.names.set(key, at);
      }
      at += wire[at - HEADER_SIZE]! + 1;
    }
  }

  /** Writes a name; `compress` false writes every label but still lets later names point here. */
  private name(name: string, compress: boolean): void {
    let rest = name;
    while (rest) {
      if (compress) {
        const at = this.names.get(rest);
        if (at !== undefined) {
          this.u16(0xc000 | at);
          return;
        }
      }
      if (this.pos <= POINTER_LIMIT && !this.names.has(rest)) this.names.set(rest, this.pos);
      const dot = rest.indexOf('.');
      const label = dot < 0 ? rest : rest.slice(0, dot);
      if (label.length === 0 || label.length > 63) throw new Error(`cannot encode name ${JSON.stringify(name)}`);
      this.u8(label.length);
      if (this.pos + label.length <= this.buf.length) this.buf.write(label, this.pos, 'latin1');
      this.pos += label.length;
      rest = dot < 0 ? '' : rest.slice(dot + 1);
    }
    this.u8(0);
  }

  private forgetFrom(mark: number, keep: number): void {
    if (this.names.size === keep) return;
    for (const [k, v] of this.names) if (v >= mark) this.names.delete(k);
  }

  // Writes past the end only move `pos`, so an oversized record is detected and rolled back.
  private u8(v: number): void {
    if (this.pos < this.buf.length) this.buf[this.pos] = v;
    this.pos += 1;
  }
  private u16(v: number): void {
    if (this.pos + 2 <= this.buf.length) this.buf.writeUInt16BE(v & 0xffff, this.pos);
    this.pos += 2;
  }
  private u32(v: number): void {
    if (this.pos + 4 <= this.buf.length) this.buf.writeUInt32BE(v >>> 0, this.pos);
    this.pos += 4;
  }
  private bytes(b: Uint8Array): void {
    if (this.pos + b.length <= this.buf.length) this.buf.set(b, this.pos);
    this.pos += b.length;
  }
}
