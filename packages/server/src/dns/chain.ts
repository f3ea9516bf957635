import type { Validity } from './backend.js';
import type { Sections } from './records.js';
import { questionLabels, type ParsedQuery } from './wire.js';

export type Transport = 'udp' | 'tcp';

/** A query that passed parsing, as the handler chain sees it. */
export class DnsRequest {
  private cachedLabels: string[] | null = null;

  constructor(
    /** The packet as received (owned by the server; do not keep it past the handler). */
    readonly raw: Buffer,
    readonly query: ParsedQuery,
    readonly transport: Transport,
  ) {}

  /**
   * Lower-cased QNAME labels, decoded on first use: a cache hit never needs them.
   * A label that cannot be a name we serve (a dot or control byte inside) reads as "\0".
   */
  labels(): string[] {
    if (this.cachedLabels === null) this.cachedLabels = questionLabels(this.raw, this.query.nameEnd);
    return this.cachedLabels;
  }
}

/**
 * An answer not yet encoded. `build(order)` lays out the sections with the endpoints in the
 * given order; `weights` (one per endpoint) drive the weighted shuffle. Built once per
 * (question, validity) and encoded in a few orders by the cache.
 */
export interface Answer {
  rcode: number;
  /** Authoritative: set for names in our domain. */
  authoritative: boolean;
  validity: Validity | undefined;
  weights: readonly number[];
  build(order: readonly number[]): Sections;
}

/** Encoded variants of one answer (same content, different record orders), ID and RD to patch. */
export interface EncodedAnswer {
  variants: readonly Buffer[];
  rcode: number;
}

export type DnsResult =
  | { kind: 'answer'; answer: Answer }
  | { kind: 'encoded'; encoded: EncodedAnswer }
  /** A complete reply from elsewhere (the recursor); only the ID is patched. */
  | { kind: 'wire'; bytes: Buffer }
  | { kind: 'drop' };

export type Handler = (req: DnsRequest) => DnsResult | Promise<DnsResult>;

/** A DNS feature, CoreDNS style: it answers, or passes the request on to `next`. */
export type Plugin = (next: Handler) => Handler;

/** `chain([a, b], last)` is `a(b(last))`: the first plugin sees the request first. */
export function chain(plugins: readonly Plugin[], last: Handler): Handler {
  let h = last;
  for (let i = plugins.length - 1; i >= 0; i--) h = plugins[i]!(h);
  return h;
}

export function isPromise<T>(v: T | Promise<T>): v is Promise<T> {
  return typeof (v as { then?: unknown } | null)?.then === 'function';
}
