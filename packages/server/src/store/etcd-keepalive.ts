import type { IDuplexStream, ILeaseKeepAliveRequest, ILeaseKeepAliveResponse, LeaseClient } from 'etcd3';
import { errors, type Clock, type Timer } from '@beacon/core';

interface Pending {
  resolve(ttlSeconds: number): void;
  reject(err: unknown): void;
  timer: Timer;
}

interface Lane {
  stream: IDuplexStream<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse>;
  /** etcd answers a keep-alive stream in request order, so replies are matched first in, first out. */
  pending: Pending[];
  dead: boolean;
}

/**
 * One keep-alive per heartbeat over a few long-lived LeaseKeepAlive streams.
 *
 * etcd serves each keep-alive stream one request at a time (a member that is not the leader
 * forwards every renewal to the leader and waits), so a single stream would cap heartbeats at
 * one round trip each; `lanes` streams run side by side. Streams carry no gRPC deadline (it
 * would end the stream); each request gets its own timer instead, and a request that times out
 * takes its stream down with it, since a stream stuck on a dead member would stall every later
 * request on it too. The next request opens a fresh stream, on whichever member the client picks.
 */
export class KeepAliveLanes {
  private readonly lanes: Array<{ opening: Promise<Lane>; lane?: Lane } | undefined>;
  private turn = 0;
  private closed = false;

  constructor(
    private readonly client: LeaseClient,
    private readonly clock: Clock,
    private readonly timeoutMs: number,
    lanes: number,
  ) {
    this.lanes = new Array<{ opening: Promise<Lane>; lane?: Lane } | undefined>(Math.max(1, lanes)).fill(undefined);
  }

  /** Renews lease `id` once; resolves to the TTL in seconds that etcd reports (0: no such lease). */
  async renew(id: number): Promise<number> {
    if (this.closed) throw errors.unavailable('the store is closed');
    const slot = this.turn++ % this.lanes.length;
    let lane = await this.lane(slot);
    // Killed while it was being handed out: take the fresh one.
    if (lane.dead) lane = await this.lane(slot);
    return new Promise<number>((resolve, reject) => {
      const timer = this.clock.setTimeout(() => {
        this.kill(slot, lane, errors.unavailable(`etcd did not answer a lease keep-alive within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      lane.pending.push({ resolve, reject, timer });
      try {
        lane.stream.write({ ID: id });
      } catch (err) {
        this.kill(slot, lane, errors.unavailable(`lease keep-alive stream failed: ${(err as Error).message}`));
      }
    });
  }

  close(): void {
    this.closed = true;
    this.lanes.forEach((entry, slot) => {
      void entry?.opening.then((lane) => this.kill(slot, lane, errors.unavailable('the store is closed')), () => undefined);
    });
  }

  private lane(slot: number): Promise<Lane> {
    const existing = this.lanes[slot];
    if (existing) return existing.opening;
    const entry: { opening: Promise<Lane>; lane?: Lane } = { opening: undefined as unknown as Promise<Lane> };
    entry.opening = this.client.leaseKeepAlive().then((stream) => {
      const lane: Lane = { stream, pending: [], dead: false };
      entry.lane = lane;
      if (this.closed) this.kill(slot, lane, errors.unavailable('the store is closed'));
      stream.on('data', (res) => {
        const p = lane.pending.shift();
        if (!p) return;
        p.timer.cancel();
        p.resolve(Number(res.TTL));
      });
      stream.on('error', (err) => this.kill(slot, lane, errors.unavailable(`lease keep-alive stream failed: ${err.message}`)));
      stream.on('end', () => this.kill(slot, lane, errors.unavailable('lease keep-alive stream ended')));
      return lane;
    });
    this.lanes[slot] = entry;
    // A failed open leaves the slot free for the next request.
    entry.opening.catch(() => {
      if (this.lanes[slot] === entry) this.lanes[slot] = undefined;
    });
    return entry.opening;
  }

  private kill(slot: number, lane: Lane, err: unknown): void {
    if (lane.dead) return;
    lane.dead = true;
    if (this.lanes[slot]?.lane === lane) this.lanes[slot] = undefined;
    try {
      lane.stream.cancel();
    } catch {
      /* already gone */
    }
    for (const p of lane.pending.splice(0)) {
      p.timer.cancel();
      p.reject(err);
    }
  }
}
