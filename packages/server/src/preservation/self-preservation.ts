import { formatDuration, isBeaconError, type Clock, type Timer } from '@beacon/core';
import type { LeaseId, LeaseInfo, Store } from '../store/types.js';

export interface SelfPreservationOptions {
  clock: Clock;
  logger?: { info(obj: unknown, msg?: string): void; warn(obj: unknown, msg?: string): void; error(obj: unknown, msg?: string): void };
  /** Off: leases expire as they fall due, whatever their number. Default on. */
  enabled?: boolean;
  /** Share of leases at risk (or expired within the window) above which eviction stops. Default 0.3. */
  threshold?: number;
  /** Share at or below which eviction resumes (renewals have recovered). Default threshold / 2. */
  resumeThreshold?: number;
  /** A lease is at risk once less than this share of its TTL is left since its holder last renewed it. Default 0.25. */
  riskFraction?: number;
  /** Natural expiries within this window count as lost leases. Default 60 s. */
  windowMs?: number;
  /** With fewer leases than this, losing them is ordinary churn, not a partition. Default 10. */
  minLeases?: number;
  /** How often the share is measured. Default 1 s. */
  tickMs?: number;
  /**
   * How long eviction may stay paused. Past it the leases still not renewed are taken as really
   * gone and let expire (Eureka's self-preservation never gives up and gets stuck on scale-downs).
   * Default 15 min.
   */
  maxHoldMs?: number;
}

export interface SelfPreservationStatus {
  enabled: boolean;
  /** Eviction is paused. */
  active: boolean;
  since?: number;
  reason?: string;
  /** Leases counted (deliberate deregistrations never are). */
  leases: number;
  /** Leases whose holder has not renewed them for most of their TTL (including those past it, held by preservation). */
  atRisk: number;
  /** Leases that expired naturally within the window. */
  recentExpiries: number;
  /** (atRisk + recentExpiries) / (leases + recentExpiries). */
  share: number;
  threshold: number;
  resumeThreshold: number;
  /** Leases whose expiry is being held off right now. */
  held: number;
  /** Renewals made by preservation rather than by the leases' holders. */
  preservedRenewals: number;
  /** Times eviction was paused since start. */
  activations: number;
}

interface Tracked {
  ttlMs: number;
  /** When the lease dies unless its holder renews it. */
  clientDeadline: number;
  /** When the store will expire it (later than clientDeadline while preservation holds it). */
  storeDeadline: number;
}

/**
 * Self-preservation: when a large share of leases is about to expire at once, the registry is more
 * likely cut off from its clients than they all died, so it stops evicting. It sits between the
 * registry and the store as a Store decorator: it sees every grant, renewal and revocation, counts
 * only leases that lapse on their own (a deregistration revokes its lease and never counts), and
 * while active renews lapsing leases itself so the store never expires them. It lets go when
 * renewals recover, or after `maxHoldMs`, treating the leases still silent as really gone.
 */
export class SelfPreservation {
  private readonly leases = new Map<LeaseId, Tracked>();
  /** Leases let go when preservation ended: they expire quietly and never count again. */
  private readonly released = new Set<LeaseId>();
  private expiries: number[] = [];
  private active: { since: number; reason: string } | undefined;
  private timer: Timer | undefined;
  private closed = false;
  private preservedRenewals = 0;
  private activations = 0;
  private last: SelfPreservationStatus;
  private readonly listeners = new Set<(s: SelfPreservationStatus) => void>();
  private inner: Store | undefined;
  readonly enabled: boolean;
  private readonly threshold: number;
  private readonly resumeThreshold: number;
  private readonly riskFraction: number;
  private readonly windowMs: number;
  private readonly minLeases: number;
  private readonly tickMs: number;
  private readonly maxHoldMs: number;

  constructor(private readonly opts: SelfPreservationOptions) {
    this.enabled = opts.enabled ?? true;
    this.threshold = clampShare(opts.threshold ?? 0.3);
    this.resumeThreshold = Math.min(this.threshold, clampShare(opts.resumeThreshold ?? this.threshold / 2));
    this.riskFraction = clampShare(opts.riskFraction ?? 0.25);
    this.windowMs = Math.max(1, opts.windowMs ?? 60_000);
    this.minLeases = Math.max(1, opts.minLeases ?? 10);
    this.tickMs = Math.max(10, opts.tickMs ?? 1_000);
    this.maxHoldMs = Math.max(this.tickMs, opts.maxHoldMs ?? 15 * 60_000);
    this.last = this.measure(opts.clock.now());
  }

  /** The store the registry should write through: the same store, with lease traffic observed. */
  wrap(inner: Store): Store {
    this.inner = inner;
    const self = this;
    return {
      kind: inner.kind,
      get: (key) => inner.get(key),
      range: (prefix) => inner.range(prefix),
      put: (key, value, o) => inner.put(key, value, o),
      delete: (key) => inner.delete(key),
      txn: (req) => inner.txn(req),
      currentRevision: () => inner.currentRevision(),
      watch: (prefix, o) => inner.watch(prefix, o),
      leaseInfo: (id) => inner.leaseInfo(id),
      restore: (req) => inner.restore(req),
      sizeBytes: () => inner.sizeBytes(),
      close: () => inner.close(),
      async grantLease(ttlMs: number): Promise<LeaseId> {
        const id = await inner.grantLease(ttlMs);
        self.track(id, ttlMs);
        return id;
      },
      async keepAlive(id: LeaseId): Promise<LeaseInfo> {
        try {
          const info = await inner.keepAlive(id);
          self.renewedByHolder(id, info.ttlMs);
          return info;
        } catch (err) {
          if (isBeaconError(err) && err.code === 'not_found') self.forget(id);
          throw err;
        }
      },
      async revokeLease(id: LeaseId): Promise<void> {
        self.forget(id);
        return inner.revokeLease(id);
      },
    };
  }

  /** Counts a lease granted before this module saw it (after a restart: a full TTL from now, as the store gives). */
  track(id: LeaseId, ttlMs: number): void {
    if (!id) return;
    const now = this.opts.clock.now();
    this.released.delete(id);
    this.leases.set(id, { ttlMs, clientDeadline: now + ttlMs, storeDeadline: now + ttlMs });
  }

  /** Counts exactly these leases from now on, each with a full TTL from now: after a restore replaced them all. */
  retrack(leases: Iterable<{ id: LeaseId; ttlMs: number }>): void {
    this.leases.clear();
    this.released.clear();
    for (const l of leases) this.track(l.id, l.ttlMs);
    this.publish(this.measure(this.opts.clock.now()));
  }

  start(): void {
    this.schedule();
  }

  close(): void {
    this.closed = true;
    this.timer?.cancel();
  }

  status(): SelfPreservationStatus {
    return this.last;
  }

  onChange(listener: (s: SelfPreservationStatus) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private renewedByHolder(id: LeaseId, ttlMs: number): void {
    const now = this.opts.clock.now();
    this.released.delete(id);
    const t = this.leases.get(id);
    if (t) {
      t.ttlMs = ttlMs;
      t.clientDeadline = now + ttlMs;
      t.storeDeadline = now + ttlMs;
    } else this.leases.set(id, { ttlMs, clientDeadline: now + ttlMs, storeDeadline: now + ttlMs });
  }

  private forget(id: LeaseId): void {
    this.leases.delete(id);
    this.released.delete(id);
  }

  private schedule(): void {
    if (this.closed) return;
    this.timer = this.opts.clock.setTimeout(() => {
      try {
        this.tick();
      } catch (err) {
        this.opts.logger?.error({ err }, 'self-preservation check failed');
      }
      this.schedule();
    }, this.tickMs);
  }

  /** One measurement: note natural expiries, decide, and hold off expiries while active. */
  tick(): void {
    const now = this.opts.clock.now();
    if (!this.active) {
      for (const [id, t] of this.leases) {
        if (t.storeDeadline > now) continue;
        this.leases.delete(id);
        if (this.released.delete(id)) continue;
        this.expiries.push(now);
      }
    }
    const horizon = now - this.windowMs;
    if (this.expiries.length && this.expiries[0]! <= horizon) this.expiries = this.expiries.filter((at) => at > horizon);

    const s = this.measure(now);
    if (this.enabled && !this.active && s.leases + s.recentExpiries >= this.minLeases && s.share > this.threshold) {
      const reason = `${s.atRisk + s.recentExpiries} of ${s.leases + s.recentExpiries} leases (${pct(s.share)}) are about to expire or expired in the last ${formatDuration(this.windowMs)}`;
      this.active = { since: now, reason };
      this.activations++;
      this.opts.logger?.warn({ selfPreservation: s }, `self-preservation ON: ${reason}; the registry is more likely cut off than the services gone, so eviction is paused`);
    } else if (this.active && (!this.enabled || s.share <= this.resumeThreshold || now - this.active.since >= this.maxHoldMs)) {
      const gaveUp = s.share > this.resumeThreshold;
      this.releaseHeld(now);
      this.opts.logger?.warn(
        { selfPreservation: s },
        gaveUp
          ? `self-preservation OFF after ${formatDuration(now - this.active.since)}: ${s.atRisk} leases still not renewed are taken as gone and will expire`
          : `self-preservation OFF: renewals recovered (${pct(s.share)} at risk); eviction resumes`,
      );
      this.active = undefined;
    }
    if (this.active) this.hold(now);
    this.publish(this.measure(now));
  }

  /** Renews, on the holders' behalf, every lease that would otherwise expire before the next look. */
  private hold(now: number): void {
    const inner = this.inner;
    if (!inner) return;
    const ahead = 2 * this.tickMs;
    for (const [id, t] of this.leases) {
      if (t.storeDeadline - now > ahead) continue;
      t.storeDeadline = now + t.ttlMs;
      this.preservedRenewals++;
      inner.keepAlive(id).catch((err) => {
        if (isBeaconError(err) && err.code === 'not_found') this.leases.delete(id);
        else this.opts.logger?.error({ err, lease: id }, 'self-preservation could not renew a lease');
      });
    }
  }

  /** Leases past their holder's deadline are let go: they expire at their held deadline and never count. */
  private releaseHeld(now: number): void {
    for (const [id, t] of this.leases) if (t.clientDeadline <= now) this.released.add(id);
  }

  private measure(now: number): SelfPreservationStatus {
    let atRisk = 0;
    let held = 0;
    let counted = 0;
    for (const [id, t] of this.leases) {
      if (this.released.has(id)) continue;
      counted++;
      if (t.clientDeadline - now < this.riskFraction * t.ttlMs) atRisk++;
      if (t.storeDeadline > t.clientDeadline && t.clientDeadline <= now) held++;
    }
    const recentExpiries = this.expiries.length;
    const denom = counted + recentExpiries;
    const share = denom === 0 ? 0 : (atRisk + recentExpiries) / denom;
    const s: SelfPreservationStatus = {
      enabled: this.enabled,
      active: !!this.active,
      leases: counted,
      atRisk,
      recentExpiries,
      share: Math.round(share * 1000) / 1000,
      threshold: this.threshold,
      resumeThreshold: this.resumeThreshold,
      held,
      preservedRenewals: this.preservedRenewals,
      activations: this.activations,
    };
    if (this.active) {
      s.since = this.active.since;
      s.reason = this.active.reason;
    }
    return s;
  }

  private publish(s: SelfPreservationStatus): void {
    this.last = s;
    for (const l of this.listeners) {
      try {
        l(s);
      } catch (err) {
        this.opts.logger?.error({ err }, 'self-preservation listener failed');
      }
    }
  }
}

function clampShare(x: number): number {
  if (!Number.isFinite(x)) return 0.3;
  return Math.min(1, Math.max(0, x));
}

function pct(x: number): string {
  return `${Math.round(x * 1000) / 10}%`;
}
