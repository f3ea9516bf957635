import type { CancelSignal } from '../util/cancel.js';
import { BeaconError, errors, type Clock } from '@beacon/core';
import { KEYS } from '../keys.js';
import type { Compare, KeyValue, Store } from '../store/types.js';
import { PrefixMirror } from '../compat/mirror.js';
import { assertFlags, assertKey, assertValue, encodeStoredKv, keptLockDelay, kvBytes, parseStoredKv, toPair, type KvPair, type StoredKv } from './record.js';

export interface PutOptions {
  flags?: number;
  /** 0: create only; N: only when the key's modify index is N. */
  cas?: number;
  /** Take the key's lock for this session. */
  acquire?: string;
  /** Give the key's lock back (it must be held by this session). */
  release?: string;
}

export interface DeleteOptions {
  recurse?: boolean;
  cas?: number;
}

export interface KvStoreOptions {
  store: Store;
  clock: Clock;
  logger?: { warn(obj: unknown, msg?: string): void; error(obj: unknown, msg?: string): void };
  /** Keys and values together may take at most this many bytes; a write that would pass it is refused. Default 256 MiB. */
  maxBytes?: number;
}

export const KV_MAX_BYTES_DEFAULT = 256 * 1024 * 1024;

const ATTEMPTS = 8;

/** Thrown when `acquire`/`lock` names a session that does not exist (Consul answers 500 "invalid session"). */
export function invalidSession(id: string): BeaconError {
  return new BeaconError('internal', `invalid session ${JSON.stringify(id)}`);
}

/**
 * Consul's key/value store over the Store: every pair is one key under `KEYS.kv`, with Consul's
 * indexes taken from the store's revisions (CreateIndex = createRevision, ModifyIndex =
 * modRevision). Writes are compare-and-set transactions; reads come from an in-memory mirror.
 */
export class KvStore {
  readonly mirror: PrefixMirror<StoredKv>;
  /** Keys a destroyed session held, and when they may be locked again (Consul's lock-delay). */
  private readonly lockDelays = new Map<string, number>();
  /** Bytes of every key and value, as the mirror holds them (so every server of a cluster counts the same). */
  private usedBytes = 0;
  readonly maxBytes: number;

  constructor(private readonly opts: KvStoreOptions) {
    this.maxBytes = opts.maxBytes ?? KV_MAX_BYTES_DEFAULT;
    this.mirror = new PrefixMirror<StoredKv>({
      store: opts.store,
      clock: opts.clock,
      prefix: KEYS.kv,
      parse: parseStoredKv,
      ...(opts.logger ? { logger: opts.logger } : {}),
    });
    this.mirror.onChange((c) => {
      if (c.reset) {
        this.sizes.clear();
        this.usedBytes = 0;
      }
      for (const e of c.put) this.count(e.name, kvBytes(e.name, e.value));
      for (const d of c.deleted) this.count(d.name, 0);
    });
  }

  private readonly sizes = new Map<string, number>();
  private count(name: string, n: number): void {
    this.usedBytes += n - (this.sizes.get(name) ?? 0);
    if (n > 0) this.sizes.set(name, n);
    else this.sizes.delete(name);
  }

  get bytes(): number {
    return this.usedBytes;
  }

  /**
   * Refuses a write that would grow the store past its quota. Checked against this server's view
   * before the write, so writes racing each other can pass it together by at most their own size.
   */
  assertRoom(growth: number): void {
    if (growth > 0 && this.usedBytes + growth > this.maxBytes)
      throw errors.tooLarge(`KV store is full: ${this.usedBytes} of ${this.maxBytes} bytes used, this write adds ${growth}; delete keys or raise --kv-max-bytes`);
  }

  get store(): Store {
    return this.opts.store;
  }

  async start(): Promise<void> {
    await this.mirror.start();
    // The first listing is not published as a change: count what it found.
    for (const e of this.mirror.all()) this.count(e.name, kvBytes(e.name, e.value));
  }

  close(): Promise<void> {
    return this.mirror.close();
  }

  get(key: string): KvPair | undefined {
    const e = this.mirror.get(key);
    return e ? toPair(key, e.value, e.createIndex, e.modifyIndex) : undefined;
  }

  list(prefix: string): KvPair[] {
    return this.mirror.list(prefix).map((e) => toPair(e.name, e.value, e.createIndex, e.modifyIndex));
  }

  /** Keys under `prefix`; with a separator, keys below the next separator fold into one entry ending with it. */
  keys(prefix: string, separator?: string): string[] {
    const out: string[] = [];
    let last: string | undefined;
    for (const e of this.mirror.list(prefix)) {
      let k = e.name;
      if (separator) {
        const at = k.indexOf(separator, prefix.length);
        if (at >= 0) k = k.slice(0, at + separator.length);
      }
      if (k !== last) out.push(k);
      last = k;
    }
    return out;
  }

  /** Consul's index for a key: its ModifyIndex, else the KV table's highest index. */
  index(key: string): number {
    return this.mirror.indexOf(key);
  }

  prefixIndex(prefix: string): number {
    return this.mirror.prefixIndex(prefix);
  }

  get tableIndex(): number {
    return this.mirror.index;
  }

  /** Parks until `key` (or anything under it, with `prefix`) changes above `minIndex`, or the wait ends. */
  wait(key: string, prefix: boolean, minIndex: number, timeoutMs: number, signal?: CancelSignal): Promise<void> {
    const current = prefix ? this.prefixIndex(key) : this.index(key);
    if (current > minIndex) return Promise.resolve();
    return this.mirror.waitForChange([key], prefix, minIndex, timeoutMs, signal);
  }

  /** Writes a value; false when a `cas`, `acquire` or `release` condition does not hold. */
  async put(key: string, value: Buffer | null, o: PutOptions = {}): Promise<boolean> {
    assertKey(key);
    assertValue(value);
    const flags = o.flags ?? 0;
    assertFlags(flags);
    if (o.acquire !== undefined && o.release !== undefined) throw errors.invalid('Conflicting flags: acquire and release');
    if (o.cas !== undefined && (!Number.isSafeInteger(o.cas) || o.cas < 0)) throw errors.invalid('Invalid cas index');
    const full = KEYS.kv + key;
    const v = value === null ? null : value.toString('base64');
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const cur = await this.opts.store.get(full);
      const curRec = cur ? parseStoredKv(cur) : undefined;
      if (o.cas !== undefined) {
        if (o.cas === 0 && cur) return false;
        if (o.cas > 0 && (!cur || cur.modRevision !== o.cas)) return false;
      }
      const rec: StoredKv = { v, f: flags, l: curRec?.l ?? 0, ...keptLockDelay(curRec) };
      this.assertRoom(kvBytes(key, rec) - kvBytes(key, curRec));
      const compare: Compare[] = [cur ? { key: full, target: 'modRevision', op: 'equal', value: cur.modRevision } : { key: full, target: 'exists', value: false }];
      if (o.acquire !== undefined) {
        const sid = o.acquire;
        if (!(await this.sessionExists(sid))) throw invalidSession(sid);
        if (curRec?.s && curRec.s !== sid) return false;
        if (curRec?.s !== sid && this.lockDelayed(key, curRec)) return false;
        rec.s = sid;
        if (curRec?.s !== sid) rec.l += 1;
        compare.push({ key: KEYS.sessions + sid, target: 'exists', value: true });
      } else if (o.release !== undefined) {
        if (!curRec || curRec.s !== o.release) return false;
      } else if (curRec?.s) {
        // A plain write keeps the lock with whoever holds it, as Consul does.
        rec.s = curRec.s;
      }
      const res = await this.opts.store.txn({ compare, success: [{ type: 'put', key: full, value: encodeStoredKv(rec) }] });
      if (!res.succeeded) {
        if (o.cas !== undefined) return false;
        if (o.acquire !== undefined && !(await this.sessionExists(o.acquire))) throw invalidSession(o.acquire);
        continue;
      }
      await this.mirror.waitForRevision(res.revision);
      return true;
    }
    throw errors.conflict(`key ${key} is being changed concurrently; try again`);
  }

  /** Deletes a key or a prefix. Only a `cas` mismatch answers false; deleting nothing is a success. */
  async delete(key: string, o: DeleteOptions = {}): Promise<boolean> {
    if (o.recurse) {
      const res = await this.opts.store.txn({ compare: [], success: [{ type: 'deletePrefix', prefix: KEYS.kv + key }] });
      if (res.results[0]?.deleted) await this.mirror.waitForRevision(res.revision);
      return true;
    }
    assertKey(key);
    const full = KEYS.kv + key;
    if (o.cas !== undefined) {
      if (!Number.isSafeInteger(o.cas) || o.cas < 0) throw errors.invalid('Invalid cas index');
      const cur = await this.opts.store.get(full);
      if (!cur) return true;
      if (cur.modRevision !== o.cas) return false;
      const res = await this.opts.store.txn({
        compare: [{ key: full, target: 'modRevision', op: 'equal', value: o.cas }],
        success: [{ type: 'delete', key: full }],
      });
      if (!res.succeeded) return false;
      await this.mirror.waitForRevision(res.revision);
      return true;
    }
    const res = await this.opts.store.txn({ compare: [], success: [{ type: 'delete', key: full }] });
    // Deleting an absent key changes nothing: there is no revision of ours to wait for.
    if (res.results[0]?.deleted) await this.mirror.waitForRevision(res.revision);
    return true;
  }

  /**
   * What happens to a session's locks when the session ends: released (the value stays) or
   * deleted, per its behavior; either way they may not be locked again for `lockDelayMs`.
   */
  async releaseSession(sessionId: string, behavior: 'release' | 'delete', lockDelayMs: number): Promise<number> {
    let n = 0;
    const held = [...this.mirror.all()].filter((e) => e.value.s === sessionId).map((e) => e.name);
    // The delay starts before the first release commits: set after, an acquire could slip into the
    // gap. Released keys carry it in their record (every server sees it); deleted ones have no
    // record left, so this server's memory holds it for them.
    const until = lockDelayMs > 0 ? this.opts.clock.now() + lockDelayMs : undefined;
    if (until) for (const key of held) this.lockDelays.set(key, until);
    for (const key of held) if (await this.releaseOne(key, sessionId, behavior, until)) n++;
    return n;
  }

  private async releaseOne(key: string, sessionId: string, behavior: 'release' | 'delete', lockDelayUntil: number | undefined): Promise<boolean> {
    const full = KEYS.kv + key;
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const cur = await this.opts.store.get(full);
      const rec = cur ? parseStoredKv(cur) : undefined;
      if (!cur || !rec || rec.s !== sessionId) return false;
      const compare: Compare[] = [{ key: full, target: 'modRevision', op: 'equal', value: cur.modRevision }];
      const next: StoredKv = { v: rec.v, f: rec.f, l: rec.l, ...(lockDelayUntil ? { d: lockDelayUntil } : keptLockDelay(rec)) };
      const res = await this.opts.store.txn({
        compare,
        success: [behavior === 'delete' ? { type: 'delete', key: full } : { type: 'put', key: full, value: encodeStoredKv(next) }],
      });
      if (res.succeeded) {
        await this.mirror.waitForRevision(res.revision);
        return true;
      }
    }
    this.opts.logger?.warn({ key, session: sessionId }, 'could not release a lock of an ended session');
    return false;
  }

  /** Whether `key` is in its lock delay, by its record (any server's release) or this server's memory. */
  lockDelayed(key: string, rec: StoredKv | undefined): boolean {
    if (rec?.d && rec.d > this.opts.clock.now()) return true;
    const until = this.lockDelays.get(key);
    if (until === undefined) return false;
    if (until > this.opts.clock.now()) return true;
    this.lockDelays.delete(key);
    return false;
  }

  async sessionExists(id: string): Promise<boolean> {
    return (await this.opts.store.get(KEYS.sessions + id)) !== undefined;
  }

  /** Reads a key from the store itself (not the mirror), for transactions. */
  readRaw(key: string): Promise<KeyValue | undefined> {
    return this.opts.store.get(KEYS.kv + key);
  }
}
