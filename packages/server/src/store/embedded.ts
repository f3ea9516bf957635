import Database from 'better-sqlite3';
import { BeaconError, errors, isBeaconError, type Clock } from '@beacon/core';
import { LeaseDeadlines } from './lease-deadlines.js';
import { holds } from './compare.js';
import { prefixEnd } from './prefix.js';
import type {
  Compare,
  KeyValue,
  LeaseId,
  LeaseInfo,
  Op,
  OpResult,
  RangeResponse,
  RestoreRequest,
  Store,
  StoreKind,
  TxnRequest,
  TxnResponse,
  WatchBatch,
  WatchEvent,
  WatchOptions,
} from './types.js';
import { WatchHub } from './watch-hub.js';
import { checkKey, checkLeaseId, checkPrefix, checkRestore, checkTxn } from './validate.js';

/** The subset of pino's interface the store needs to report background failures. */
export interface StoreLogger {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface EmbeddedStoreOptions {
  /** A file path, or ':memory:' (nothing survives close). */
  path: string;
  clock: Clock;
  /** Events of watch history kept in memory. Default 100,000. */
  historySize?: number;
  logger?: StoreLogger;
}

export interface EmbeddedStoreStats {
  /** SQLite transactions committed by the write queue. */
  commits: number;
  /** Write requests applied (put, delete, txn, grant, revoke, expiry). */
  writes: number;
  leases: number;
  /** Oldest revision a watch may start from. */
  oldestWatchRevision: number;
  retainedEvents: number;
}

export const EMBEDDED_LIMITS = {
  keyChars: 4096,
  valueBytes: 1_572_864,
  opsPerTxn: 1024,
  maxTtlMs: 10 * 365 * 24 * 3600 * 1000,
} as const;

const SCHEMA_VERSION = 2;

export async function openEmbeddedStore(opts: EmbeddedStoreOptions): Promise<EmbeddedStore> {
  return EmbeddedStore.open(opts);
}

type WriteOp =
  | { kind: 'txn'; req: TxnRequest }
  | { kind: 'grant'; ttlMs: number }
  | { kind: 'revoke'; id: LeaseId }
  | { kind: 'expire'; id: LeaseId }
  | { kind: 'restore'; req: RestoreRequest };

interface Queued {
  op: WriteOp;
  resolve(value: unknown): void;
  reject(err: unknown): void;
}

/** What one write did, applied inside the batch transaction and acted on after the commit. */
interface Applied {
  value: unknown;
  batch?: WatchBatch;
  afterCommit?: () => void;
}

type Outcome = { ok: true; applied: Applied } | { ok: false; error: BeaconError };

interface Row {
  key: string;
  value: string;
  createRevision: number;
  modRevision: number;
  version: number;
  lease: number;
}

const KV_COLUMNS = 'key, value, create_rev AS createRevision, mod_rev AS modRevision, version, lease';

/**
 * The default Store: keys in SQLite (WAL, synchronous=FULL), leases and watch history in memory.
 *
 * Writes are queued and applied together, in order, in one SQLite transaction per event-loop turn
 * (group commit: one fsync for many writes); each still gets its own revision and its promise
 * settles after the commit. Reads go straight to SQLite and, since the batch runs synchronously,
 * only ever see committed state.
 */
export class EmbeddedStore implements Store {
  readonly kind: StoreKind = 'embedded';

  private rev: number;
  private nextLease: number;
  private queue: Queued[] = [];
  private flushScheduled = false;
  private closed = false;
  private readonly counters = { commits: 0, writes: 0 };
  private readonly deadlines: LeaseDeadlines;
  private readonly hub: WatchHub;
  private readonly sql: ReturnType<typeof prepare>;

  private constructor(
    private readonly db: Database.Database,
    private readonly opts: EmbeddedStoreOptions,
  ) {
    this.sql = prepare(db);
    this.rev = this.sql.getMeta.get('revision')?.value ?? 0;
    this.nextLease = this.sql.getMeta.get('next_lease')?.value ?? 1;
    this.hub = new WatchHub(this.rev, opts.historySize ?? 100_000);
    this.deadlines = new LeaseDeadlines(opts.clock, (ids) => this.expire(ids));
    // Leases live in memory: after a restart nobody could have renewed them, so each gets a full TTL.
    for (const l of this.sql.allLeases.all()) this.deadlines.track(l.id, l.ttlMs);
  }

  static async open(opts: EmbeddedStoreOptions): Promise<EmbeddedStore> {
    const historySize = opts.historySize ?? 100_000;
    if (!Number.isSafeInteger(historySize) || historySize < 1) throw errors.invalid(`historySize must be a positive integer, got ${historySize}`);
    let db: Database.Database | undefined;
    try {
      db = new Database(opts.path);
      // One process owns a data directory: a second server on the same file would fork the revision.
      db.pragma('locking_mode = EXCLUSIVE');
      db.pragma('busy_timeout = 200');
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      migrate(db);
      return new EmbeddedStore(db, opts);
    } catch (err) {
      db?.close();
      if (isBeaconError(err)) throw err;
      const why = (err as { code?: string }).code === 'SQLITE_BUSY' ? 'it is in use by another process' : (err as Error).message;
      throw errors.unavailable(`cannot open the store at ${opts.path}: ${why}`);
    }
  }

  // ---- reads --------------------------------------------------------------------------------

  async get(key: string): Promise<KeyValue | undefined> {
    this.assertOpen();
    checkKey(key, EMBEDDED_LIMITS);
    return this.sql.get.get(key);
  }

  /** Every key that starts with `prefix`, a plain string prefix (`/a/b` also matches `/a/bc`). */
  async range(prefix: string): Promise<RangeResponse> {
    this.assertOpen();
    checkPrefix(prefix, EMBEDDED_LIMITS);
    return { kvs: this.scan(prefix), revision: this.rev };
  }

  async currentRevision(): Promise<number> {
    this.assertOpen();
    return this.rev;
  }

  // ---- writes -------------------------------------------------------------------------------

  async put(key: string, value: string, opts?: { lease?: LeaseId }): Promise<number> {
    const op: Op = { type: 'put', key, value, ...(opts?.lease ? { lease: opts.lease } : {}) };
    const res = await this.txn({ compare: [], success: [op] });
    return res.revision;
  }

  async delete(key: string): Promise<number> {
    const res = await this.txn({ compare: [], success: [{ type: 'delete', key }] });
    return res.revision;
  }

  txn(req: TxnRequest): Promise<TxnResponse> {
    try {
      this.assertOpen();
      checkTxn(req, EMBEDDED_LIMITS);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.enqueue<TxnResponse>({ kind: 'txn', req });
  }

  grantLease(ttlMs: number): Promise<LeaseId> {
    try {
      this.assertOpen();
      if (!Number.isSafeInteger(ttlMs) || ttlMs < 1 || ttlMs > EMBEDDED_LIMITS.maxTtlMs) {
        throw errors.invalid(`lease TTL must be a whole number of milliseconds in 1..${EMBEDDED_LIMITS.maxTtlMs}, got ${ttlMs}`);
      }
    } catch (err) {
      return Promise.reject(err);
    }
    return this.enqueue<LeaseId>({ kind: 'grant', ttlMs });
  }

  async revokeLease(id: LeaseId): Promise<void> {
    this.assertOpen();
    checkLeaseId(id);
    await this.enqueue<void>({ kind: 'revoke', id });
  }

  /** Applied in one SQLite transaction like any write: readers see the old keys or the new, never a mix. */
  async restore(req: RestoreRequest): Promise<number> {
    this.assertOpen();
    checkRestore(req, EMBEDDED_LIMITS);
    return this.enqueue<number>({ kind: 'restore', req });
  }

  /** In memory only: heartbeats never touch the disk. */
  async keepAlive(id: LeaseId): Promise<LeaseInfo> {
    this.assertOpen();
    const info = this.deadlines.renew(id);
    if (!info) throw errors.notFound(`lease ${id} does not exist or has expired`);
    return info;
  }

  async leaseInfo(id: LeaseId): Promise<LeaseInfo | undefined> {
    this.assertOpen();
    const info = this.deadlines.info(id);
    if (!info) throw errors.notFound(`lease ${id} does not exist or has expired`);
    return info;
  }

  // ---- watch --------------------------------------------------------------------------------

  watch(prefix: string, opts: WatchOptions): AsyncIterable<WatchBatch> {
    checkPrefix(prefix, EMBEDDED_LIMITS);
    return this.hub.watch(prefix, opts);
  }

  /** Forgets watch history below `revision` (as etcd's compaction); watches from below fail with `compacted`. */
  compact(revision: number): void {
    this.assertOpen();
    this.hub.compact(revision);
  }

  async sizeBytes(): Promise<number> {
    this.assertOpen();
    return (this.db.pragma('page_count', { simple: true }) as number) * (this.db.pragma('page_size', { simple: true }) as number);
  }

  stats(): EmbeddedStoreStats {
    return {
      ...this.counters,
      leases: this.deadlines.size,
      oldestWatchRevision: this.hub.oldestRetained,
      retainedEvents: this.hub.retainedEvents,
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    // Writes already accepted are committed; expiries cannot start any more.
    this.deadlines.stop();
    this.flush();
    this.closed = true;
    this.hub.close();
    this.db.close();
  }

  // ---- the write queue ----------------------------------------------------------------------

  private enqueue<T>(op: WriteOp): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ op, resolve: resolve as (v: unknown) => void, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(this.flush);
      }
    });
  }

  /** Applies every queued write in one SQLite transaction, then publishes and settles in order. */
  private readonly flush = (): void => {
    this.flushScheduled = false;
    if (this.queue.length === 0 || this.closed) return;
    const batch = this.queue;
    this.queue = [];
    const startRev = this.rev;
    const startLease = this.nextLease;
    const outcomes: Outcome[] = [];
    try {
      this.db.transaction(() => {
        for (const q of batch) {
          try {
            outcomes.push({ ok: true, applied: this.apply(q.op) });
          } catch (err) {
            // A refused write (bad lease, bad request) is checked before it changes anything:
            // it fails alone. Anything else (disk full, I/O error) fails the whole batch.
            if (!isBeaconError(err)) throw err;
            outcomes.push({ ok: false, error: err });
          }
        }
        if (this.rev !== startRev) this.sql.setMeta.run('revision', this.rev);
        if (this.nextLease !== startLease) this.sql.setMeta.run('next_lease', this.nextLease);
      })();
    } catch (err) {
      this.rev = startRev;
      this.nextLease = startLease;
      const failure = errors.unavailable(`the store could not commit: ${(err as Error).message}`);
      this.opts.logger?.error({ err, writes: batch.length }, 'store commit failed');
      for (const q of batch) q.reject(failure);
      return;
    }
    this.counters.commits++;
    this.counters.writes += batch.length;
    for (let i = 0; i < batch.length; i++) {
      const o = outcomes[i]!;
      if (!o.ok) {
        batch[i]!.reject(o.error);
        continue;
      }
      o.applied.afterCommit?.();
      if (o.applied.batch) this.hub.publish(o.applied.batch);
      batch[i]!.resolve(o.applied.value);
    }
  };

  private apply(op: WriteOp): Applied {
    switch (op.kind) {
      case 'txn':
        return this.applyTxn(op.req);
      case 'grant': {
        const id = this.nextLease++;
        this.sql.insertLease.run(id, op.ttlMs);
        return { value: id, afterCommit: () => this.deadlines.track(id, op.ttlMs) };
      }
      case 'revoke':
        if (!this.sql.getLease.get(op.id)) throw errors.notFound(`lease ${op.id} does not exist or has expired`);
        return this.dropLease(op.id);
      case 'expire':
        // Revoked meanwhile: nothing left to do.
        if (!this.sql.getLease.get(op.id)) return { value: undefined };
        return this.dropLease(op.id);
      case 'restore':
        return this.applyRestore(op.req);
      default: {
        const never: never = op;
        throw new Error(`unknown write ${String(never)}`);
      }
    }
  }

  /** Deletes the lease and every key attached to it, in one revision. */
  private dropLease(id: LeaseId): Applied {
    const rows = this.sql.byLease.all(id);
    const rev = this.rev + 1;
    const events: WatchEvent[] = [];
    for (const prev of rows) events.push(deleteEvent(prev, rev));
    if (rows.length > 0) this.sql.deleteByLease.run(id);
    this.sql.deleteLease.run(id);
    const applied: Applied = { value: undefined, afterCommit: () => this.deadlines.forget(id) };
    if (events.length > 0) {
      this.rev = rev;
      applied.batch = { revision: rev, events };
    }
    return applied;
  }

  private applyRestore(req: RestoreRequest): Applied {
    const fresh = new Map<LeaseId, { id: LeaseId; ttlMs: number }>();
    for (const l of req.leases) {
      const id = this.nextLease++;
      this.sql.insertLease.run(id, l.ttlMs);
      fresh.set(l.id, { id, ttlMs: l.ttlMs });
    }
    const rev = this.rev + 1;
    const events: WatchEvent[] = [];
    const restored = new Set<string>();
    const replacedLeases = new Set<LeaseId>();
    for (const r of req.kvs) {
      const event = this.putKey(r.key, r.value, r.lease ? fresh.get(r.lease)!.id : 0, rev);
      if (event.prevKv?.lease) replacedLeases.add(event.prevKv.lease);
      events.push(event);
      restored.add(r.key);
    }
    for (const prev of this.scan(req.prefix)) {
      if (restored.has(prev.key) || req.keep.some((k) => prev.key.startsWith(k))) continue;
      this.sql.deleteKey.run(prev.key);
      events.push(deleteEvent(prev, rev));
      if (prev.lease) replacedLeases.add(prev.lease);
    }
    // A lease left holding nothing belonged to the state the restore replaced: it goes with it,
    // rather than lapse later as if its holder had stopped renewing.
    const dropped = [...replacedLeases].filter((id) => this.sql.byLease.all(id).length === 0);
    for (const id of dropped) this.sql.deleteLease.run(id);
    const applied: Applied = {
      value: this.rev,
      afterCommit: () => {
        for (const id of dropped) this.deadlines.forget(id);
        for (const l of fresh.values()) this.deadlines.track(l.id, l.ttlMs);
      },
    };
    if (events.length > 0) {
      this.rev = rev;
      applied.value = rev;
      applied.batch = { revision: rev, events };
    }
    return applied;
  }

  private applyTxn(req: TxnRequest): Applied {
    const succeeded = req.compare.every((c) => this.holds(c));
    const ops = succeeded ? req.success : (req.failure ?? []);
    // Refuse before writing anything, so a refused txn leaves no trace.
    for (const op of ops) {
      if (op.type === 'put' && op.lease) this.assertLeaseAlive(op.lease);
    }
    const rev = this.rev + 1;
    const results: OpResult[] = [];
    const events: WatchEvent[] = [];
    for (const op of ops) {
      switch (op.type) {
        case 'get': {
          const kv = this.sql.get.get(op.key);
          results.push(kv ? { kv } : {});
          break;
        }
        case 'put': {
          const event = this.putKey(op.key, op.value, op.lease ?? 0, rev);
          events.push(event);
          results.push(event.prevKv ? { kv: event.prevKv } : {});
          break;
        }
        case 'delete': {
          const prev = this.sql.get.get(op.key);
          if (prev) {
            this.sql.deleteKey.run(op.key);
            events.push(deleteEvent(prev, rev));
          }
          results.push({ deleted: prev ? 1 : 0 });
          break;
        }
        case 'deletePrefix': {
          const gone = this.scan(op.prefix);
          for (const prev of gone) {
            this.sql.deleteKey.run(prev.key);
            events.push(deleteEvent(prev, rev));
          }
          results.push({ deleted: gone.length });
          break;
        }
        default: {
          const never: never = op;
          throw errors.invalid(`unknown op ${JSON.stringify(never)}`);
        }
      }
    }
    const applied: Applied = { value: undefined };
    // As in etcd, only a change moves the revision: failed compares, reads and deletes of absent keys do not.
    if (events.length > 0) {
      this.rev = rev;
      applied.batch = { revision: rev, events };
    }
    const response: TxnResponse = { succeeded, revision: this.rev, results };
    applied.value = response;
    return applied;
  }

  /** Writes one key at revision `rev`; the event carries the value it replaced. */
  private putKey(key: string, value: string, lease: LeaseId, rev: number): WatchEvent {
    const prev = this.sql.get.get(key);
    const kv: KeyValue = {
      key,
      value,
      createRevision: prev?.createRevision ?? rev,
      modRevision: rev,
      version: (prev?.version ?? 0) + 1,
      lease,
    };
    this.sql.upsert.run(kv.key, kv.value, kv.createRevision, kv.modRevision, kv.version, kv.lease);
    return prev ? { type: 'put', kv, prevKv: prev } : { type: 'put', kv };
  }

  private holds(c: Compare): boolean {
    return holds(c, this.sql.get.get(c.key));
  }

  private assertLeaseAlive(id: LeaseId): void {
    // The row is the truth inside the batch (a revoke queued earlier has removed it); the
    // deadline catches a lease whose expiry timer has not fired yet.
    if (!this.sql.getLease.get(id) || this.deadlines.overdue(id)) throw errors.notFound(`lease ${id} does not exist or has expired`);
  }

  /** Queues the deletion of expired leases and commits at once, so the keys go at the deadline. */
  private expire(ids: LeaseId[]): void {
    if (this.closed) return;
    for (const id of ids) {
      this.queue.push({
        op: { kind: 'expire', id },
        resolve: () => undefined,
        reject: (err) => {
          // Its keys must not outlive it: try again shortly rather than leave them until a restart.
          this.opts.logger?.error({ err, lease: id }, 'lease expiry could not be committed; retrying');
          this.opts.clock.setTimeout(() => this.expire([id]), 1000);
        },
      });
    }
    this.flush();
  }

  private scan(prefix: string): Row[] {
    const end = prefixEnd(prefix);
    return end === undefined ? this.sql.rangeFrom.all(prefix) : this.sql.range.all(prefix, end);
  }

  private assertOpen(): void {
    if (this.closed) throw errors.unavailable('the store is closed');
  }
}

function prepare(db: Database.Database) {
  return {
    getMeta: db.prepare<[string], { value: number }>('SELECT value FROM meta WHERE name = ?'),
    setMeta: db.prepare<[string, number]>('INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value'),
    get: db.prepare<[string], Row>(`SELECT ${KV_COLUMNS} FROM kv WHERE key = ?`),
    range: db.prepare<[string, string], Row>(`SELECT ${KV_COLUMNS} FROM kv WHERE key >= ? AND key < ? ORDER BY key`),
    rangeFrom: db.prepare<[string], Row>(`SELECT ${KV_COLUMNS} FROM kv WHERE key >= ? ORDER BY key`),
    upsert: db.prepare<[string, string, number, number, number, number]>(
      `INSERT INTO kv (key, value, create_rev, mod_rev, version, lease) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (key) DO UPDATE SET value = excluded.value, create_rev = excluded.create_rev,
         mod_rev = excluded.mod_rev, version = excluded.version, lease = excluded.lease`,
    ),
    deleteKey: db.prepare<[string]>('DELETE FROM kv WHERE key = ?'),
    // `lease <> 0` lets SQLite use the partial index.
    byLease: db.prepare<[number], Row>(`SELECT ${KV_COLUMNS} FROM kv WHERE lease = ? AND lease <> 0 ORDER BY key`),
    deleteByLease: db.prepare<[number]>('DELETE FROM kv WHERE lease = ? AND lease <> 0'),
    getLease: db.prepare<[number], { ttlMs: number }>('SELECT ttl_ms AS ttlMs FROM leases WHERE id = ?'),
    allLeases: db.prepare<[], { id: number; ttlMs: number }>('SELECT id, ttl_ms AS ttlMs FROM leases'),
    insertLease: db.prepare<[number, number]>('INSERT INTO leases (id, ttl_ms) VALUES (?, ?)'),
    deleteLease: db.prepare<[number]>('DELETE FROM leases WHERE id = ?'),
  };
}

function migrate(db: Database.Database): void {
  db.transaction(() => {
    db.exec(`
      CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS leases (id INTEGER PRIMARY KEY, ttl_ms INTEGER NOT NULL);
    `);
    const row = db.prepare<[], { value: number }>("SELECT value FROM meta WHERE name = 'schema'").get();
    if (row && row.value > SCHEMA_VERSION) throw errors.unavailable(`the store was written by a newer Beacon (schema ${row.value}, this one knows ${SCHEMA_VERSION})`);
    const kv = db.prepare<[], { sql: string }>("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'kv'").get();
    if (!kv) db.exec(kvTable('kv'));
    else if (/WITHOUT\s+ROWID/i.test(kv.sql)) {
      // Schema 1 clustered kv on the key (WITHOUT ROWID). Records of half a KiB spread over the
      // key space made each group commit rewrite about one leaf page per key written: 2–4× slower
      // commits than a rowid table with a separate key index. Copy into the new shape.
      db.exec(`
        ${kvTable('kv_v2')};
        INSERT INTO kv_v2 (key, value, create_rev, mod_rev, version, lease) SELECT key, value, create_rev, mod_rev, version, lease FROM kv;
        DROP TABLE kv;
        ALTER TABLE kv_v2 RENAME TO kv;
      `);
    }
    db.exec('CREATE INDEX IF NOT EXISTS kv_by_lease ON kv (lease) WHERE lease <> 0;');
    db.prepare("INSERT INTO meta (name, value) VALUES ('schema', ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value").run(SCHEMA_VERSION);
  })();
}

/** Rows are appended in rowid order; lookups by key go through the key's unique index. */
function kvTable(name: string): string {
  return `CREATE TABLE ${name} (
    key TEXT NOT NULL UNIQUE,
    value TEXT NOT NULL,
    create_rev INTEGER NOT NULL,
    mod_rev INTEGER NOT NULL,
    version INTEGER NOT NULL,
    lease INTEGER NOT NULL DEFAULT 0
  )`;
}

function deleteEvent(prev: KeyValue, rev: number): WatchEvent {
  return { type: 'delete', kv: { key: prev.key, value: '', createRevision: 0, modRevision: rev, version: 0, lease: 0 }, prevKv: prev };
}

// ---- request checks (before queueing, so a malformed write never joins a batch) ------------

