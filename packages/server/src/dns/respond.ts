import type { Random } from '@beacon/core';
import { encodeAnswer } from './cache.js';
import type { Answer, DnsRequest, EncodedAnswer } from './chain.js';
import { weightedOrders } from './shuffle.js';
import { FLAG, HEADER_SIZE, OPT_SIZE, RCODE, type Edns, type QueryProblem } from './wire.js';
import type { MessageWriter } from './writer.js';

export interface ResponderOptions {
  /** The largest UDP answer we send, and what our OPT record advertises. */
  maxUdpSize: number;
  random: Random;
  writer: MessageWriter;
  /** Sets RA: names outside the domain are forwarded to a recursor. */
  recursionAvailable: boolean;
}

const TCP_LIMIT = 65_535;

/**
 * Turns handler results into the bytes for one client: picks one of the cached record orders,
 * patches the ID, RD/CD and the question's case, appends OPT when the query had one, and
 * answers with an empty TC reply when the message does not fit (512 bytes without EDNS, else
 * the smaller of the client's size and ours) so the client retries over TCP.
 */
export class Responder {
  constructor(private readonly opts: ResponderOptions) {}

  /** The size limit for this query's answer. */
  limit(req: DnsRequest): number {
    if (req.transport === 'tcp') return TCP_LIMIT;
    const e = req.query.edns;
    if (!e) return 512;
    return Math.max(512, Math.min(e.udpSize, this.opts.maxUdpSize));
  }

  encoded(req: DnsRequest, encoded: EncodedAnswer): Buffer {
    const variants = encoded.variants;
    const variant = variants.length === 1 ? variants[0]! : variants[Math.floor(this.opts.random.next() * variants.length)]!;
    return this.finish(req, variant);
  }

  /** An answer that was not cached (no cache plugin, or not cacheable): one random order. */
  answer(req: DnsRequest, answer: Answer): Buffer {
    const orders = weightedOrders(answer.weights, 1, this.opts.random);
    return this.encoded(req, encodeAnswer(this.opts.writer, req, answer, orders));
  }

  /** A complete reply from the recursor: only the ID is ours to set. */
  wire(req: DnsRequest, bytes: Buffer): Buffer {
    if (bytes.length > this.limit(req)) return this.truncated(req, bytes);
    const out = Buffer.from(bytes);
    out.writeUInt16BE(req.query.id, 0);
    return out;
  }

  private finish(req: DnsRequest, variant: Buffer): Buffer {
    const q = req.query;
    const opt = q.edns ? OPT_SIZE : 0;
    const len = variant.length + opt;
    if (len > this.limit(req)) return this.truncated(req, variant);
    const out = Buffer.allocUnsafe(len);
    variant.copy(out, 0);
    out[0] = q.id >> 8;
    out[1] = q.id & 0xff;
    out[2] = (variant[2]! & 0xfe) | ((q.flags >> 8) & 0x01);
    out[3] = (variant[3]! & 0x0f) | (q.flags & FLAG.CD) | (this.opts.recursionAvailable ? FLAG.RA : 0);
    // The question as the client wrote it: resolvers using 0x20 case randomisation check it.
    req.raw.copy(out, HEADER_SIZE, HEADER_SIZE, q.nameEnd);
    if (q.edns) {
      writeOpt(out, variant.length, this.opts.maxUdpSize, q.edns, 0);
      const ar = ((out[10]! << 8) | out[11]!) + 1;
      out[10] = ar >> 8;
      out[11] = ar & 0xff;
    }
    return out;
  }

  /** Header (TC set, rcode and AA kept), the question, and OPT when the query had one. */
  private truncated(req: DnsRequest, full: Buffer): Buffer {
    const q = req.query;
    const opt = q.edns ? OPT_SIZE : 0;
    const out = Buffer.alloc(q.questionEnd + opt);
    out.writeUInt16BE(q.id, 0);
    out[2] = 0x80 | (full[2]! & 0x04) | 0x02 | ((q.flags >> 8) & 0x01);
    out[3] = (full[3]! & 0x0f) | (q.flags & FLAG.CD) | (this.opts.recursionAvailable ? FLAG.RA : 0);
    out[5] = 1;
    req.raw.copy(out, HEADER_SIZE, HEADER_SIZE, q.questionEnd);
    if (q.edns) {
      writeOpt(out, q.questionEnd, this.opts.maxUdpSize, q.edns, 0);
      out[11] = 1;
    }
    return out;
  }

  /** FORMERR, NOTIMP and the like for a packet the parser turned down. */
  problem(raw: Buffer, p: Extract<QueryProblem, { action: 'reply' }>): Buffer {
    return this.errorReply(raw, p.id, p.flags, p.rcode, p.questionEnd, p.edns);
  }

  /** BADVERS: the query's EDNS version is newer than 0. */
  badVersion(req: DnsRequest): Buffer {
    return this.errorReply(req.raw, req.query.id, req.query.flags, RCODE.BADVERS, req.query.questionEnd, req.query.edns);
  }

  /** A reply with the question (when we could read it) and no records. */
  errorReply(raw: Buffer, id: number, flags: number, rcode: number, questionEnd: number | undefined, edns: Edns | undefined): Buffer {
    const qlen = questionEnd === undefined ? 0 : questionEnd - HEADER_SIZE;
    const opt = edns ? OPT_SIZE : 0;
    const out = Buffer.alloc(HEADER_SIZE + qlen + opt);
    out.writeUInt16BE(id, 0);
    // QR, the opcode and RD as asked; the low 4 bits of the rcode here, the rest in OPT.
    out[2] = 0x80 | ((flags >> 8) & 0x79);
    out[3] = (rcode & 0x0f) | (this.opts.recursionAvailable ? FLAG.RA : 0);
    if (qlen) {
      out[5] = 1;
      raw.copy(out, HEADER_SIZE, HEADER_SIZE, questionEnd);
    }
    if (edns) {
      writeOpt(out, HEADER_SIZE + qlen, this.opts.maxUdpSize, edns, rcode >> 4);
      out[11] = 1;
    }
    return out;
  }
}

function writeOpt(out: Buffer, at: number, udpSize: number, edns: Edns, extendedRcode: number): void {
  out[at] = 0;
  out.writeUInt16BE(41, at + 1);
  out.writeUInt16BE(udpSize, at + 3);
  out[at + 5] = extendedRcode;
  out[at + 6] = 0;
  out[at + 7] = edns.dnssecOk ? 0x80 : 0;
  out[at + 8] = 0;
  out.writeUInt16BE(0, at + 9);
}
