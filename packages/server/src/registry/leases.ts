import { errors, isBeaconError } from '@beacon/core';
import type { LeaseId, Store } from '../store/types.js';

/** What a heartbeat answers: the instance's TTL and how much of it is left. */
export interface HeartbeatResult {
  ttlMs: number;
  remainingMs: number;
}

/** The lease a registration writes its record with; `fresh` when it was granted for this attempt alone. */
export interface AcquiredLease {
  id: LeaseId;
  fresh: boolean;
}

/** The record a registration replaces: the lease it lives by and the TTL it was registered with. */
export interface CurrentLease {
  lease: LeaseId;
  ttlMs: number | undefined;
}

/**
 * How instances' TTLs map to store leases, the one thing that differs between one server and a
 * cluster: one store lease per instance (embedded store: leases are in-memory deadlines there), or
 * instances sharing one etcd lease per (server, TTL bucket) with their own deadlines in the
 * owning server's memory (clustered mode; `cluster/shared-leases.ts`).
 */
export interface InstanceLeases {
  /**
   * The lease for a registration of instance `id` with `ttlMs`. Reusing the current record's lease
   * counts as a heartbeat (the instance's clock restarts).
   */
  acquire(id: string, ttlMs: number, current: CurrentLease | undefined): Promise<AcquiredLease>;
  /** The registration's write failed its compare: give back what {@link acquire} gave for it. */
  abandon(lease: AcquiredLease): Promise<void>;
  /** The record of `id` was written on `lease` with `ttlMs`: its clock starts now. */
  written(id: string, lease: LeaseId, ttlMs: number): void;
  /** The record of `id` left `lease` (deregistered, or re-registered on another lease). */
  released(id: string, lease: LeaseId): Promise<void>;
  /** Renews instance `id`, whose record lives by `lease` with `ttlMs`. `not_found` when the lease has expired. */
  heartbeat(id: string, lease: LeaseId, ttlMs: number): Promise<HeartbeatResult>;
  /** The instance's TTL and what is left of it, for `explain`; undefined when its lease is gone. */
  remaining(id: string, lease: LeaseId, ttlMs: number): Promise<HeartbeatResult | undefined>;
}

/** One store lease per instance: a heartbeat is the store's keep-alive of it. */
export class PerInstanceLeases implements InstanceLeases {
  constructor(
    private readonly store: Store,
    private readonly logger?: { warn(obj: unknown, msg?: string): void },
  ) {}

  /** Reuses the instance's live lease when the TTL is unchanged, else grants a new one. */
  async acquire(_id: string, ttlMs: number, current: CurrentLease | undefined): Promise<AcquiredLease> {
    if (current?.lease && current.ttlMs === ttlMs) {
      try {
        await this.store.keepAlive(current.lease);
        return { id: current.lease, fresh: false };
      } catch (err) {
        if (!isBeaconError(err) || err.code !== 'not_found') throw err;
      }
    }
    return { id: await this.store.grantLease(ttlMs), fresh: true };
  }

  async abandon(lease: AcquiredLease): Promise<void> {
    if (lease.fresh) await this.revokeQuietly(lease.id);
  }

  written(): void {
    // The store's lease runs from its grant or keep-alive: nothing to start here.
  }

  async released(_id: string, lease: LeaseId): Promise<void> {
    await this.revokeQuietly(lease);
  }

  async heartbeat(id: string, lease: LeaseId): Promise<HeartbeatResult> {
    try {
      const info = await this.store.keepAlive(lease);
      return { ttlMs: info.ttlMs, remainingMs: info.remainingMs };
    } catch (err) {
      if (isBeaconError(err) && err.code === 'not_found') throw errors.notFound(`instance ${id}'s lease has expired; register it again`);
      throw err;
    }
  }

  async remaining(_id: string, lease: LeaseId): Promise<HeartbeatResult | undefined> {
    try {
      const info = await this.store.leaseInfo(lease);
      return info && { ttlMs: info.ttlMs, remainingMs: Math.max(0, info.remainingMs) };
    } catch (err) {
      if (!isBeaconError(err) || err.code !== 'not_found') throw err;
      return undefined;
    }
  }

  private async revokeQuietly(id: LeaseId): Promise<void> {
    try {
      await this.store.revokeLease(id);
    } catch (err) {
      if (!isBeaconError(err) || err.code !== 'not_found') this.logger?.warn({ err, lease: id }, 'could not revoke lease');
    }
  }
}
