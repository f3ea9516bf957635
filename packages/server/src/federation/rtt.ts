import type { BeaconHttp } from '@beacon/client';
import type { Clock, Timer } from '@beacon/core';

export interface RttProbeOptions {
  http: Pick<BeaconHttp, 'request' | 'servers'>;
  clock: Clock;
  /** Between two rounds of pings. */
  intervalMs: number;
  /** A ping unanswered this long counts the server unreachable. */
  timeoutMs: number;
  headers: Record<string, string>;
  onError?: (server: string, err: unknown) => void;
  /** After each round of pings (the DC's reachability may have changed). */
  onRound?: () => void;
}

/**
 * Samples kept per server; its RTT is the lowest of them. A ping's time includes the remote
 * server's scheduling delay and, the first time, the connection's set-up: the lowest recent one
 * is the distance, and a single slow answer does not reorder the DCs.
 */
const WINDOW = 5;

/**
 * Round-trip times to one datacenter's servers, from periodic `GET /api/v1/status`: the DCs are
 * ordered by them (`/v1/catalog/datacenters`, failover's "nearest"), and a DC's stream goes to
 * its nearest reachable server first.
 */
export class RttProbe {
  private readonly samples = new Map<string, number[]>();
  private readonly rtts = new Map<string, number>();
  private timer: Timer | undefined;
  private closed = false;
  /** Ends pings in flight at close: a black-holed server would otherwise hold it for the whole timeout. */
  private readonly stop = new AbortController();
  private round: Promise<void> | undefined;

  constructor(private readonly opts: RttProbeOptions) {}

  /** Pings every server once now, then every `intervalMs`. Resolves after the first round. */
  start(): Promise<void> {
    const tick = async () => {
      await this.pingAll();
      if (!this.closed) this.opts.onRound?.();
      if (!this.closed) this.timer = this.opts.clock.setTimeout(() => void (this.round = tick()), this.opts.intervalMs);
    };
    return (this.round = tick());
  }

  async close(): Promise<void> {
    this.closed = true;
    this.timer?.cancel();
    this.stop.abort();
    await this.round;
  }

  /** The round-trip time to `server` in ms (lowest of its recent pings); undefined while it does not answer. */
  rttOf(server: string): number | undefined {
    return this.rtts.get(server);
  }

  /** The DC's distance: its nearest reachable server's; undefined when none answers. */
  best(): number | undefined {
    let best: number | undefined;
    for (const v of this.rtts.values()) if (best === undefined || v < best) best = v;
    return best;
  }

  /** The servers nearest first, unreachable ones last in their configured order. */
  ordered(): string[] {
    const inf = Number.POSITIVE_INFINITY;
    return this.opts.http.servers
      .map((s, k) => ({ s, k, r: this.rtts.get(s) ?? inf }))
      .sort((a, b) => a.r - b.r || a.k - b.k)
      .map((x) => x.s);
  }

  private async pingAll(): Promise<void> {
    await Promise.all(this.opts.http.servers.map((s) => this.ping(s)));
  }

  private async ping(server: string): Promise<void> {
    const start = this.opts.clock.now();
    try {
      await this.opts.http.request('GET', '/api/v1/status', { server, timeoutMs: this.opts.timeoutMs, headers: this.opts.headers, signal: this.stop.signal });
      const recent = this.samples.get(server) ?? [];
      recent.push(this.opts.clock.now() - start);
      if (recent.length > WINDOW) recent.shift();
      this.samples.set(server, recent);
      this.rtts.set(server, Math.min(...recent));
    } catch (err) {
      // Unreachable now: what it measured before says nothing of when it comes back.
      this.rtts.delete(server);
      this.samples.delete(server);
      if (!this.closed) this.opts.onError?.(server, err);
    }
  }
}
