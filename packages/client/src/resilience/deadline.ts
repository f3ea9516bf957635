import type { IncomingMessage, ServerResponse } from 'node:http';
import { BeaconError, type Clock } from '@beacon/core';
import { preciseClock } from '../time.js';

/**
 * The request header that carries the caller's remaining time budget, in whole milliseconds
 * (relative, like gRPC's `grpc-timeout`, so clock skew between hosts does not matter).
 */
export const DEADLINE_HEADER = 'x-beacon-deadline-ms';

/**
 * A point in time by which an answer is no longer useful. Create one from an incoming request
 * with {@link readDeadline} and pass it to `client.fetch(url, { beacon: { deadline } })`, so the
 * downstream call gets only what is left.
 *
 * @example
 * await client.fetch('http://payments/charge', { beacon: { deadline: readDeadline(req.headers) } });
 */
export class Deadline {
  private ac: AbortController | undefined;

  /** `at` is in clock ms. */
  constructor(
    readonly at: number,
    private readonly clock: Clock = preciseClock,
  ) {}

  /**
   * A deadline `ms` from now.
   *
   * @example
   * const d = Deadline.after(500);
   */
  static after(ms: number, clock: Clock = preciseClock): Deadline {
    return new Deadline(clock.now() + ms, clock);
  }

  /**
   * Milliseconds left (never negative).
   *
   * @example
   * if (deadline.remainingMs() < 50) return cachedAnswer();
   */
  remainingMs(): number {
    return Math.max(0, this.at - this.clock.now());
  }

  /** True once the time is up. */
  get expired(): boolean {
    return this.clock.now() >= this.at;
  }

  /**
   * A signal that aborts (with a `timeout` BeaconError) when the deadline passes — hand it to
   * database calls and fetches so work stops when nobody waits for it any more.
   *
   * @example
   * await db.query(sql, { signal: deadline.signal });
   */
  get signal(): AbortSignal {
    if (!this.ac) {
      const ac = (this.ac = new AbortController());
      const check = () => {
        const left = this.at - this.clock.now();
        if (left <= 0) ac.abort(new BeaconError('timeout', 'deadline exceeded', { reason: 'deadline' }));
        // Timers overflow past 2^31 - 1 ms: wake up early and look again.
        else this.clock.setTimeout(check, Math.min(left, 2 ** 31 - 1));
      };
      check();
    }
    return this.ac.signal;
  }

  /**
   * The header value to send downstream: the whole milliseconds left, at least 1 unless expired.
   *
   * @example
   * headers[DEADLINE_HEADER] = deadline.headerValue();
   */
  headerValue(): string {
    const left = this.at - this.clock.now();
    return String(left <= 0 ? 0 : Math.max(1, Math.floor(left)));
  }
}

type HeaderBag = Headers | Record<string, string | string[] | undefined>;

function headerOf(headers: HeaderBag, name: string): string | undefined {
  if (typeof (headers as Headers).get === 'function') return (headers as Headers).get(name) ?? undefined;
  const v = (headers as Record<string, string | string[] | undefined>)[name];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * Reads the caller's deadline from request headers (`x-beacon-deadline-ms`). Undefined when the
 * header is absent or malformed; `maxMs` caps what a caller may ask for (default 1 h).
 *
 * @example
 * http.createServer((req, res) => {
 *   const deadline = readDeadline(req.headers);
 *   if (deadline?.expired) { res.writeHead(504).end(); return; }
 * });
 */
export function readDeadline(headers: HeaderBag, opts: { clock?: Clock; maxMs?: number } = {}): Deadline | undefined {
  const raw = headerOf(headers, DEADLINE_HEADER);
  if (raw === undefined || !/^\d{1,12}$/.test(raw.trim())) return undefined;
  const clock = opts.clock ?? preciseClock;
  const ms = Math.min(Number(raw.trim()), opts.maxMs ?? 3_600_000);
  return new Deadline(clock.now() + ms, clock);
}

/**
 * Wraps a node:http handler so it honours the caller's deadline: a request that arrives with no
 * time left is answered `504` with Beacon's error body and never reaches the handler; others get
 * the {@link Deadline} as a third argument (undefined when the caller sent none).
 *
 * @example
 * http.createServer(withDeadline(async (req, res, deadline) => {
 *   const rows = await db.query(sql, { signal: deadline?.signal });
 *   res.end(JSON.stringify(rows));
 * }));
 */
export function withDeadline(
  handler: (req: IncomingMessage, res: ServerResponse, deadline: Deadline | undefined) => unknown,
  opts: { clock?: Clock; maxMs?: number } = {},
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const deadline = readDeadline(req.headers, opts);
    if (deadline?.expired) {
      const body = JSON.stringify(new BeaconError('timeout', 'the caller’s deadline passed before the request was handled', { reason: 'deadline' }).toJSON());
      res.writeHead(504, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
      return;
    }
    void handler(req, res, deadline);
  };
}
