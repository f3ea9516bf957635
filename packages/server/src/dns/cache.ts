import type { Random } from '@beacon/core';
import { isValid, type DnsCatalog, type Validity } from './backend.js';
import { isPromise, type Answer, type DnsRequest, type EncodedAnswer, type Plugin } from './chain.js';
import { weightedOrders } from './shuffle.js';
import { FLAG, RCODE } from './wire.js';
import type { MessageWriter } from './writer.js';

interface Entry extends EncodedAnswer {
  validity: Validity;
  bytes: number;
}

/** Encoded answers by question, within a byte budget; the oldest insertions go first. */
export class AnswerCache {
  private readonly map = new Map<string, Entry>();
  private bytes = 0;

  constructor(private readonly maxBytes: number) {}

  get(key: string): Entry | undefined {
    return this.map.get(key);
  }

  set(key: string, entry: Entry): void {
    this.delete(key);
    if (entry.bytes > this.maxBytes) return;
    this.map.set(key, entry);
    this.bytes += entry.bytes;
    for (const [k, e] of this.map) {
      if (this.bytes <= this.maxBytes) break;
      this.map.delete(k);
      this.bytes -= e.bytes;
    }
  }

  delete(key: string): void {
    const old = this.map.get(key);
    if (!old) return;
    this.map.delete(key);
    this.bytes -= old.bytes;
  }

  get size(): number {
    return this.map.size;
  }

  get usedBytes(): number {
    return this.bytes;
  }
}

/** Encodes an answer in `orders.length` record orders for this question. */
export function encodeAnswer(writer: MessageWriter, req: DnsRequest, answer: Answer, orders: readonly (readonly number[])[]): EncodedAnswer {
  const wire = Buffer.from(req.query.key, 'latin1');
  const labels = req.labels();
  const flags = answer.authoritative ? FLAG.AA : 0;
  const variants = orders.map((order) => writer.encode({ flags, rcode: answer.rcode, question: { wire, labels }, sections: answer.build(order) }).bytes);
  return { variants, rcode: answer.rcode };
}

export interface CacheStats {
  hits: number;
  misses: number;
  entries: number;
  bytes: number;
}

export interface CachePluginOptions {
  catalog: DnsCatalog;
  random: Random;
  writer: MessageWriter;
  /** Record orders kept per answer. */
  permutations: number;
  maxBytes: number;
}

/**
 * Caches encoded answers per (question, validity): a hit is checked against the catalog on
 * every query (a service's index, the global index for nodes), so a change is never served
 * stale; it just rebuilds the entry. Negative answers live in their own, smaller budget, so a
 * flood of made-up names cannot push out the answers real clients ask for.
 */
export function cachePlugin(opts: CachePluginOptions): Plugin & { stats(): CacheStats } {
  const positive = new AnswerCache(Math.floor(opts.maxBytes * 0.875));
  const negative = new AnswerCache(Math.floor(opts.maxBytes * 0.125));
  let hits = 0;
  let misses = 0;
  const plugin: Plugin = (next) => (req) => {
    const key = req.query.key;
    const entry = positive.get(key) ?? negative.get(key);
    if (entry && isValid(entry.validity, opts.catalog)) {
      hits++;
      return { kind: 'encoded', encoded: entry };
    }
    misses++;
    const result = next(req);
    if (isPromise(result) || result.kind !== 'answer') return result;
    const { answer } = result;
    const validity = answer.validity;
    if (!validity || validity.kind === 'uncached') return result;
    const orders = weightedOrders(answer.weights, answer.weights.length > 1 ? opts.permutations : 1, opts.random);
    const encoded = encodeAnswer(opts.writer, req, answer, orders);
    let bytes = key.length * 2 + 64;
    for (const v of encoded.variants) bytes += v.length + 32;
    const target = answer.rcode === RCODE.NXDOMAIN ? negative : positive;
    if (entry) (positive.get(key) ? positive : negative).delete(key);
    target.set(key, { ...encoded, validity, bytes });
    return { kind: 'encoded', encoded };
  };
  return Object.assign(plugin, {
    stats: () => ({ hits, misses, entries: positive.size + negative.size, bytes: positive.usedBytes + negative.usedBytes }),
  });
}
