import type { Clock } from '@beacon/core';
import { clientPrefix } from './client-prefix.js';
import { HEADER_SIZE } from './wire.js';

/** What to do with one UDP response. */
export type RrlVerdict = 'send' | 'slip' | 'drop';

export interface RrlOptions {
  /** Responses per second to one client network (IPv4 /24, IPv6 /56); also the burst. */
  rate: number;
  /** Every `slip`-th limited response goes out as an empty TC reply, the rest are dropped; 0 drops all. */
  slip: number;
  clock: Clock;
  /** Networks tracked at once (a spoofed flood names many); default 65,536. */
  maxNetworks?: number;
}

interface Bucket {
  tokens: number;
  /** When `tokens` was last brought up to date (clock milliseconds). */
  at: number;
  /** Responses limited so far, for the slip count. */
  limited: number;
}

/**
 * Response rate limiting for UDP, BIND's `rate-limit` in its simplest form: a token bucket per
 * client network. UDP source addresses can be forged, so without it anyone can aim this
 * server's answers at a victim; with it a victim gets at most `rate` a second. The occasional
 * TC reply ("slip") lets a real client behind a limited network retry over TCP, which cannot be
 * forged. Per process: with several UDP processes each keeps its own buckets.
 */
export class ResponseRateLimiter {
  private readonly buckets = new Map<number | string, Bucket>();
  private readonly maxNetworks: number;
  private lastSweep = -Infinity;

  constructor(private readonly opts: RrlOptions) {
    this.maxNetworks = opts.maxNetworks ?? 65_536;
  }

  /** Takes a token for a response to `address`, or says how to limit it. */
  verdict(address: string): RrlVerdict {
    const { rate, slip } = this.opts;
    const now = this.opts.clock.now();
    const key = rrlNetwork(address);
    let b = this.buckets.get(key);
    if (b) {
      b.tokens = Math.min(rate, b.tokens + ((now - b.at) * rate) / 1000);
      b.at = now;
    } else {
      if (this.buckets.size >= this.maxNetworks) this.makeRoom(now);
      b = { tokens: rate, at: now, limited: 0 };
      this.buckets.set(key, b);
    }
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 'send';
    }
    b.limited++;
    return slip > 0 && b.limited % slip === 0 ? 'slip' : 'drop';
  }

  /**
   * A network whose bucket has refilled is the same as one never seen: forget those, at most
   * once a second (a sweep walks every bucket). Otherwise the oldest goes, which costs nothing.
   */
  private makeRoom(now: number): void {
    const { rate } = this.opts;
    if (now - this.lastSweep >= 1000) {
      this.lastSweep = now;
      for (const [k, b] of this.buckets) if (b.tokens + ((now - b.at) * rate) / 1000 >= rate) this.buckets.delete(k);
    }
    if (this.buckets.size >= this.maxNetworks) this.buckets.delete(this.buckets.keys().next().value!);
  }
}

/**
 * The client network a UDP response is counted against: an IPv4 /24 or an IPv6 /56, as BIND
 * does. A dotted quad as the socket reports it (the common case) becomes a number, read off the
 * text without allocating, as it is done for every response.
 */
export function rrlNetwork(address: string): number | string {
  let n = 0;
  let octet = 0;
  for (let i = 0; i < address.length; i++) {
    const c = address.charCodeAt(i);
    if (c === 46) {
      n = n * 256 + octet;
      octet = 0;
    } else if (c >= 48 && c <= 57) octet = octet * 10 + c - 48;
    else {
      // IPv6; an IPv4-mapped address comes back as its IPv4 /24, counted as one.
      const prefix = clientPrefix(address, 3, 7);
      return prefix.includes('.') ? rrlNetwork(`${prefix}.0`) : prefix;
    }
  }
  return n;
}

/**
 * The "slip" reply: the response cut to its header and question with TC set, so a real client
 * asks again over TCP. Undefined when the response has no readable question.
 */
export function slipReply(response: Buffer): Buffer | undefined {
  if (response.length < HEADER_SIZE || response.readUInt16BE(4) !== 1) return undefined;
  let at = HEADER_SIZE;
  // Our responses echo the question uncompressed: plain labels up to the root.
  for (;;) {
    const len = response[at];
    if (len === undefined || len > 63) return undefined;
    at += 1 + len;
    if (len === 0) break;
  }
  at += 4;
  if (at > response.length) return undefined;
  const out = Buffer.from(response.subarray(0, at));
  out[2] = out[2]! | 0x02;
  out.fill(0, 6, HEADER_SIZE);
  return out;
}
