import type { Transport } from './chain.js';
import { QTYPE, RCODE } from './wire.js';

/** Query types counted by name; every other type is counted as `other`, so the label set stays fixed. */
export const COUNTED_QTYPES = ['A', 'AAAA', 'SRV', 'TXT', 'PTR', 'SOA', 'NS', 'CNAME', 'ANY', 'other'] as const;
export type CountedQtype = (typeof COUNTED_QTYPES)[number];
export const COUNTED_RCODES = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED', 'BADVERS', 'other'] as const;
export type CountedRcode = (typeof COUNTED_RCODES)[number];
export const DNS_PROTOS: readonly Transport[] = ['udp', 'tcp'];
/** What response rate limiting did instead of sending a UDP answer. */
export const RATE_LIMIT_ACTIONS = ['dropped', 'slipped'] as const;
export type RateLimitAction = (typeof RATE_LIMIT_ACTIONS)[number];

/** One answer in this many is timed for the latency histogram: two clock reads cost about a third of a cached answer. */
export const LATENCY_SAMPLE = 8;

/** Upper bounds (seconds) of the answer-latency buckets: a cached answer takes microseconds, a recursor round trip milliseconds. */
export const DNS_LATENCY_BUCKETS = [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.005, 0.025, 0.1, 0.5, 2] as const;

/**
 * Cumulative counts of one process, plain arrays so they cross the worker IPC channel as they are.
 * `queries[(proto × types + type) × rcodes + rcode]`; `latency` holds per-bucket (not cumulative)
 * counts, the last slot for answers slower than the last bound.
 */
export interface DnsCountsSnapshot {
  queries: number[];
  latency: number[];
  latencySum: number;
  /** UDP answers rate-limited, by {@link RATE_LIMIT_ACTIONS}. */
  rateLimited: number[];
}

const NTYPES = COUNTED_QTYPES.length;
const NRCODES = COUNTED_RCODES.length;

// Lookup tables built once: the hot path indexes arrays, it never builds a label object.
const typeIndex = new Uint8Array(65536).fill(COUNTED_QTYPES.indexOf('other'));
for (const [i, name] of COUNTED_QTYPES.entries()) if (name !== 'other') typeIndex[QTYPE[name]] = i;
const rcodeIndex = new Uint8Array(4096).fill(COUNTED_RCODES.indexOf('other'));
for (const [i, name] of COUNTED_RCODES.entries()) if (name !== 'other') rcodeIndex[RCODE[name]] = i;

export function emptyCounts(): DnsCountsSnapshot {
  return { queries: new Array<number>(DNS_PROTOS.length * NTYPES * NRCODES).fill(0), latency: new Array<number>(DNS_LATENCY_BUCKETS.length + 1).fill(0), latencySum: 0, rateLimited: RATE_LIMIT_ACTIONS.map(() => 0) };
}

/** Answers counted by proto, query type and rcode, and their latency; one per DnsEngine. */
export class DnsCounts {
  private readonly queries = new Float64Array(DNS_PROTOS.length * NTYPES * NRCODES);
  private readonly latency = new Float64Array(DNS_LATENCY_BUCKETS.length + 1);
  private latencySum = 0;
  private readonly limited = new Float64Array(RATE_LIMIT_ACTIONS.length);

  /** One answer sent; `qtype` -1 when the query could not be parsed that far. */
  answered(transport: Transport, qtype: number, rcode: number): void {
    const t = qtype < 0 ? NTYPES - 1 : typeIndex[qtype]!;
    this.queries[((transport === 'udp' ? 0 : 1) * NTYPES + t) * NRCODES + rcodeIndex[rcode & 0xfff]!]!++;
  }

  /** One UDP answer dropped, or sent as an empty TC reply, by response rate limiting. */
  rateLimited(action: RateLimitAction): void {
    this.limited[action === 'dropped' ? 0 : 1]!++;
  }

  /** How long one (sampled) answer took. */
  timed(seconds: number): void {
    let b = 0;
    while (b < DNS_LATENCY_BUCKETS.length && seconds > DNS_LATENCY_BUCKETS[b]!) b++;
    this.latency[b]!++;
    this.latencySum += seconds;
  }

  snapshot(): DnsCountsSnapshot {
    return { queries: [...this.queries], latency: [...this.latency], latencySum: this.latencySum, rateLimited: [...this.limited] };
  }
}

/** The sum of several processes' counts. */
export function addCounts(into: DnsCountsSnapshot, c: DnsCountsSnapshot): DnsCountsSnapshot {
  for (let i = 0; i < into.queries.length; i++) into.queries[i]! += c.queries[i] ?? 0;
  for (let i = 0; i < into.latency.length; i++) into.latency[i]! += c.latency[i] ?? 0;
  into.latencySum += c.latencySum;
  for (let i = 0; i < into.rateLimited.length; i++) into.rateLimited[i]! += c.rateLimited[i] ?? 0;
  return into;
}

/** Every series of a snapshot with its labels, zeros included, so each label set exists from the start. */
export function* querySeries(c: DnsCountsSnapshot): Generator<{ proto: Transport; type: CountedQtype; rcode: CountedRcode; value: number }> {
  for (const [p, proto] of DNS_PROTOS.entries())
    for (const [t, type] of COUNTED_QTYPES.entries())
      for (const [r, rcode] of COUNTED_RCODES.entries()) yield { proto, type, rcode, value: c.queries[(p * NTYPES + t) * NRCODES + r] ?? 0 };
}
