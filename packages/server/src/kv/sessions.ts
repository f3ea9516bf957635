import type { CancelSignal } from '../util/cancel.js';
import { errors, isBeaconError, LIMITS, type CheckStatus, type Clock, type Random } from '@beacon/core';
import { KEYS } from '../keys.js';
import type { LeaseId, Store } from '../store/types.js';
import { PrefixMirror, type MirrorEntry } from '../compat/mirror.js';
import { uuid, UUID_RE } from '../compat/uuid.js';
import type { KvStore } from './kv.js';

export type SessionBehavior = 'release' | 'delete';

export interface SessionRecord {
  id: string;
  name: string;
  node: string;
  lockDelayMs: number;
  behavior: SessionBehavior;
  /** Sessions with a TTL hold a store lease and end when it is not renewed. */
  ttlMs?: number;
  /** Health checks whose turning critical ends the session (Consul's NodeChecks and ServiceChecks). */
  nodeChecks: string[];
  serviceChecks: string[];
  createdAt: number;
  /** Who created it (an IPv4 address or IPv6 /64), for the per-client cap; absent on older records. */
  client?: string;
}

export interface Session extends SessionRecord {
  createIndex: number;
  modifyIndex: number;
}

export interface SessionInput {
  name?: string;
  node?: string;
  lockDelayMs?: number;
  behavior?: SessionBehavior;
  ttlMs?: number;
  nodeChecks?: string[];
  serviceChecks?: string[];
  /** The creating client, counted against `maxPerClient`. */
  client?: string;
}

/** Where sessions learn about nodes and checks (the catalog, through the Consul adapter). */
export interface SessionHealth {
  nodeExists(node: string): boolean;
  /** Status of a check on a node; undefined when it does not exist. */
  checkStatus(node: string, checkId: string): CheckStatus | undefined;
  /** Called on every catalog change, so sessions bound to checks can end when one turns critical. */
  subscribe(listener: () => void): () => void;
}

export interface SessionsOptions {
  store: Store;
  clock: Clock;
  random: Random;
  kv: KvStore;
  health: SessionHealth;
  defaultNode: string;
  /** Sessions one client may hold at once; beyond it creating one answers 429. Default 256; 0: no cap. */
  maxPerClient?: number;
  logger?: { info?(obj: unknown, msg?: string): void; warn(obj: unknown, msg?: string): void; error(obj: unknown, msg?: string): void };
}

export const SESSIONS_PER_CLIENT_DEFAULT = 256;

export const SESSION_LIMITS = { minTtlMs: 10_000, maxTtlMs: 86_400_000, maxLockDelayMs: 60_000, defaultLockDelayMs: 15_000 } as const;

/**
 * Consul's SessionTTLMultiplier: a session lives until twice its TTL after the last renewal, and
 * lock holders (Patroni asks for ttl/2) size their leases on that; ending it at 1 × TTL lets a
 * second holder take a lock the first still believes it owns.
 */
export const SESSION_TTL_MULTIPLIER = 2;

/**
 * Consul sessions: a record per session under `KEYS.sessions`, on a store lease when it has a
 * TTL. However a session ends (destroy, TTL, a critical check, another server deleting it), the
 * locks it held are released or deleted per its behavior; every server reacts to the deletion it
 * sees in the feed, and the compare-and-set writes make that safe to do more than once.
 */
export class Sessions {
  readonly mirror: PrefixMirror<SessionRecord>;
  private unsubscribe: (() => void) | undefined;
  private offFeed: (() => void) | undefined;
  private readonly ending = new Set<string>();

  constructor(private readonly opts: SessionsOptions) {
    this.mirror = new PrefixMirror<SessionRecord>({
      store: opts.store,
      clock: opts.clock,
      prefix: KEYS.sessions,
      parse: (kv) => {
        try {
          const r = JSON.parse(kv.value) as SessionRecord;
          return typeof r?.id === 'string' ? r : undefined;
        } catch {
          return undefined;
        }
      },
      ...(opts.logger ? { logger: opts.logger } : {}),
    });
  }

  async start(): Promise<void> {
    await this.mirror.start();
    this.offFeed = this.mirror.onChange((c) => {
      for (const d of c.deleted) {
        if (d.previous) this.afterEnd(d.previous.value);
      }
    });
    this.unsubscribe = this.opts.health.subscribe(() => this.checkHealth());
  }

  async close(): Promise<void> {
    this.unsubscribe?.();
    this.offFeed?.();
    await this.mirror.close();
  }

  get index(): number {
    return this.mirror.index;
  }

  get(id: string): Session | undefined {
    const e = this.mirror.get(id);
    return e ? view(e) : undefined;
  }

  list(): Session[] {
    return this.mirror.list('').map(view);
  }

  byNode(node: string): Session[] {
    return this.list().filter((s) => s.node === node);
  }

  wait(minIndex: number, timeoutMs: number, signal?: CancelSignal, id?: string): Promise<void> {
    const current = id === undefined ? this.mirror.index : this.mirror.indexOf(id);
    if (current > minIndex) return Promise.resolve();
    return this.mirror.waitForChange([id ?? ''], id === undefined, minIndex, timeoutMs, signal);
  }

  async create(input: SessionInput): Promise<Session> {
    const cap = this.opts.maxPerClient ?? SESSIONS_PER_CLIENT_DEFAULT;
    if (input.client !== undefined && cap > 0) {
      let held = 0;
      for (const e of this.mirror.all()) if (e.value.client === input.client) held++;
      if (held >= cap) throw errors.tooMany(`${input.client} holds ${held} sessions, the per-client cap; destroy some or raise --sessions-per-client`);
    }
    const node = input.node || this.opts.defaultNode;
    if (!this.opts.health.nodeExists(node)) throw errors.invalid(`Missing node registration: node ${JSON.stringify(node)} is not in the catalog`);
    const behavior = input.behavior ?? 'release';
    if (behavior !== 'release' && behavior !== 'delete') throw errors.invalid(`Invalid Behavior setting ${JSON.stringify(behavior)}: use release or delete`);
    const lockDelayMs = input.lockDelayMs ?? SESSION_LIMITS.defaultLockDelayMs;
    if (!Number.isFinite(lockDelayMs) || lockDelayMs < 0 || lockDelayMs > SESSION_LIMITS.maxLockDelayMs)
      throw errors.invalid(`LockDelay must be between 0 and ${SESSION_LIMITS.maxLockDelayMs / 1000}s`);
    if (input.ttlMs !== undefined && input.ttlMs !== 0 && (input.ttlMs < SESSION_LIMITS.minTtlMs || input.ttlMs > SESSION_LIMITS.maxTtlMs))
      throw errors.invalid(`Invalid Session TTL '${input.ttlMs / 1000}s', must be between [10s=24h0m0s]`);
    const nodeChecks = [...new Set(input.nodeChecks ?? ['serfHealth'])];
    const serviceChecks = [...new Set(input.serviceChecks ?? [])];
    if (nodeChecks.length + serviceChecks.length > LIMITS.checks * 4) throw errors.invalid('too many checks for one session');
    for (const c of [...nodeChecks, ...serviceChecks]) {
      const st = this.opts.health.checkStatus(node, c);
      if (st === undefined) throw errors.invalid(`Missing check '${c}' registration`);
      if (st === 'critical') throw errors.invalid(`Check '${c}' is in critical state`);
    }
    const rec: SessionRecord = {
      id: uuid(this.opts.random),
      name: (input.name ?? '').slice(0, 256),
      node,
      lockDelayMs,
      behavior,
      nodeChecks,
      serviceChecks,
      createdAt: this.opts.clock.now(),
      ...(input.client !== undefined ? { client: input.client } : {}),
    };
    let lease: LeaseId = 0;
    if (input.ttlMs) {
      rec.ttlMs = input.ttlMs;
      lease = await this.opts.store.grantLease(input.ttlMs * SESSION_TTL_MULTIPLIER);
    }
    const key = KEYS.sessions + rec.id;
    const res = await this.opts.store.txn({
      compare: [{ key, target: 'exists', value: false }],
      success: [{ type: 'put', key, value: JSON.stringify(rec), ...(lease ? { lease } : {}) }],
    });
    if (!res.succeeded) throw errors.conflict('session id collision; try again');
    await this.mirror.waitForRevision(res.revision);
    return this.get(rec.id) ?? { ...rec, createIndex: res.revision, modifyIndex: res.revision };
  }

  /** Renews a TTL session for another TTL × multiplier from now; undefined when the session does not exist (any more). */
  async renew(id: string): Promise<Session | undefined> {
    const e = this.mirror.get(id);
    if (!e) return undefined;
    if (e.lease) {
      try {
        await this.opts.store.keepAlive(e.lease);
      } catch (err) {
        if (isBeaconError(err) && err.code === 'not_found') return undefined;
        throw err;
      }
    }
    return view(e);
  }

  /** Ends a session now: its locks are released or deleted first, then the record goes. */
  async destroy(id: string): Promise<void> {
    if (!UUID_RE.test(id)) return;
    const e = this.mirror.get(id) ?? (await this.readRaw(id));
    if (!e) return;
    await this.opts.kv.releaseSession(id, e.value.behavior, e.value.lockDelayMs);
    const key = KEYS.sessions + id;
    const res = await this.opts.store.txn({ compare: [], success: [{ type: 'delete', key }] });
    if (e.lease) {
      try {
        await this.opts.store.revokeLease(e.lease);
      } catch (err) {
        if (!isBeaconError(err) || err.code !== 'not_found') throw err;
      }
    }
    if (res.results[0]?.deleted) await this.mirror.waitForRevision(res.revision);
  }

  private async readRaw(id: string): Promise<MirrorEntry<SessionRecord> | undefined> {
    const kv = await this.opts.store.get(KEYS.sessions + id);
    if (!kv) return undefined;
    try {
      const value = JSON.parse(kv.value) as SessionRecord;
      return { name: id, value, createIndex: kv.createRevision, modifyIndex: kv.modRevision, lease: kv.lease };
    } catch {
      return undefined;
    }
  }

  /** A session's record went (TTL, destroy, another server): apply its behavior to the locks it held. */
  private afterEnd(rec: SessionRecord): void {
    this.opts.kv
      .releaseSession(rec.id, rec.behavior, rec.lockDelayMs)
      .then((n) => {
        if (n > 0) this.opts.logger?.info?.({ session: rec.id, behavior: rec.behavior, keys: n }, 'session ended; its locks were let go');
      })
      .catch((err) => this.opts.logger?.error({ err, session: rec.id }, 'releasing the locks of an ended session failed'));
  }

  /** Ends sessions whose node is gone or one of whose checks turned critical, as Consul does. */
  private checkHealth(): void {
    for (const e of this.mirror.all()) {
      const s = e.value;
      if (this.ending.has(s.id)) continue;
      let why: string | undefined;
      if (!this.opts.health.nodeExists(s.node)) why = `node ${s.node} left the catalog`;
      for (const c of [...s.nodeChecks, ...s.serviceChecks]) {
        if (why) break;
        const st = this.opts.health.checkStatus(s.node, c);
        if (st === undefined) why = `check ${c} was removed`;
        else if (st === 'critical') why = `check ${c} is critical`;
      }
      if (!why) continue;
      this.ending.add(s.id);
      this.opts.logger?.info?.({ session: s.id, why }, 'invalidating session');
      this.destroy(s.id)
        .catch((err) => this.opts.logger?.error({ err, session: s.id }, 'invalidating a session failed'))
        .finally(() => this.ending.delete(s.id));
    }
  }
}

function view(e: MirrorEntry<SessionRecord>): Session {
  return { ...e.value, createIndex: e.createIndex, modifyIndex: e.modifyIndex };
}
