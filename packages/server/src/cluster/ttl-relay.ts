import { isBeaconError, type Clock } from '@beacon/core';
import { KEYS } from '../keys.js';
import type { Store, WatchBatch } from '../store/types.js';
import { followPrefix } from './follow.js';
import type { Membership } from './membership.js';

export interface TtlRelayOptions {
  store: Store;
  clock: Clock;
  membership: Membership;
  /** Restarts the TTL clock of a check this server owns. */
  reported(checkId: string): void;
  logger?: { warn(obj: unknown, msg?: string): void } | undefined;
}

/**
 * TTL checks in a cluster. A TTL check's timer runs on the server that owns its instance, but a
 * report (pass / warn / fail) may reach any server, and one that changes no status writes
 * nothing, so the owner would not hear of it and would time the check out. A server that takes a
 * report for a check it does not own therefore puts `/beacon/ttl-reports/<check>` (attached to
 * its membership lease, so the keys go with it); the owner follows the prefix and restarts the
 * timer. Reports that reach the owner itself cost no write, as before.
 */
export class TtlReportRelay {
  private readonly abort = new AbortController();
  private following: Promise<void> | undefined;

  constructor(private readonly opts: TtlRelayOptions) {}

  async start(): Promise<void> {
    const { ready, done } = followPrefix(
      this.opts.store,
      KEYS.ttlReports,
      // Reports before a (re)listing are not replayed: the owner's timers restart with a full TTL
      // whenever ownership changes, and a relist only follows a broken feed.
      { reset: () => undefined, batch: (b) => this.apply(b) },
      { clock: this.opts.clock, signal: this.abort.signal, logger: this.opts.logger },
    );
    this.following = done;
    await ready;
  }

  /** Tells the owner of `checkId` that a report reached this server. */
  async relay(checkId: string): Promise<void> {
    const key = KEYS.ttlReport(checkId);
    const self = this.opts.membership.self;
    const lease = this.opts.membership.leaseId;
    if (!lease) {
      await this.opts.store.put(key, self);
      return;
    }
    try {
      await this.opts.store.put(key, self, { lease });
    } catch (err) {
      // The membership lease lapsed a moment ago (it is being renewed): the report still counts.
      if (!isBeaconError(err) || err.code !== 'not_found') throw err;
      await this.opts.store.put(key, self);
    }
  }

  async close(): Promise<void> {
    this.abort.abort();
    await this.following;
  }

  private apply(batch: WatchBatch): void {
    for (const ev of batch.events) {
      if (ev.type !== 'put' || ev.kv.value === this.opts.membership.self) continue;
      this.opts.reported(ev.kv.key.slice(KEYS.ttlReports.length));
    }
  }
}
