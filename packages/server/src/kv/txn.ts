import { errors } from '@beacon/core';
import { KEYS } from '../keys.js';
import type { Compare, KeyValue, Op } from '../store/types.js';
import type { KvStore } from './kv.js';
import { invalidSession } from './kv.js';
import { assertFlags, assertKey, assertValue, encodeStoredKv, keptLockDelay, KV_LIMITS, kvBytes, parseStoredKv, type KvPair, type StoredKv } from './record.js';

export type KvVerb =
  | 'set'
  | 'cas'
  | 'lock'
  | 'unlock'
  | 'get'
  | 'get-tree'
  | 'check-index'
  | 'check-session'
  | 'check-not-exists'
  | 'delete'
  | 'delete-tree'
  | 'delete-cas';

export const KV_VERBS: readonly KvVerb[] = [
  'set',
  'cas',
  'lock',
  'unlock',
  'get',
  'get-tree',
  'check-index',
  'check-session',
  'check-not-exists',
  'delete',
  'delete-tree',
  'delete-cas',
];

export interface KvTxnOp {
  verb: KvVerb;
  key: string;
  value?: Buffer | null;
  flags?: number;
  index?: number;
  session?: string;
}

export interface TxnError {
  opIndex: number;
  what: string;
}

/** Results carry the value only for reads, as Consul's do. */
export interface TxnResultKv extends KvPair {
  withValue: boolean;
}

export type TxnOutcome = { ok: true; results: TxnResultKv[] } | { ok: false; errors: TxnError[] };

interface Slot {
  /** What the store held when read (undefined: absent). */
  read: KeyValue | undefined;
  /** The state after the operations so far (undefined: absent). */
  rec: StoredKv | undefined;
  changed: boolean;
}

const ATTEMPTS = 8;

/**
 * Consul's `/v1/txn` for KV operations: the operations run in order against a snapshot, and the
 * writes they leave commit in one store transaction that compares every key read against its
 * snapshot revision, so the whole list applies atomically or not at all (retried when another
 * writer got in between). Keys that appear under a tree prefix between the read and the commit
 * are the one race a key-level compare cannot see.
 */
export async function runKvTxn(kv: KvStore, ops: KvTxnOp[]): Promise<TxnOutcome> {
  if (ops.length === 0) throw errors.invalid('Transaction contains no operations');
  if (ops.length > KV_LIMITS.txnOps) throw errors.invalid(`Transaction contains too many operations (${ops.length} > ${KV_LIMITS.txnOps})`);
  ops.forEach(validateOp);

  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const slots = new Map<string, Slot>();
    const trees = new Map<string, string[]>();
    // Snapshot every key and prefix the operations touch.
    for (const op of ops) {
      if (op.verb === 'get-tree' || op.verb === 'delete-tree') {
        if (trees.has(op.key)) continue;
        const names: string[] = [];
        for (const e of await rangeRaw(kv, op.key)) {
          names.push(e.name);
          if (!slots.has(e.name)) slots.set(e.name, { read: e.kv, rec: parseStoredKv(e.kv), changed: false });
        }
        trees.set(op.key, names);
      } else if (!slots.has(op.key)) {
        const read = await kv.readRaw(op.key);
        slots.set(op.key, { read, rec: read ? parseStoredKv(read) : undefined, changed: false });
      }
    }
    const sessions = new Set<string>();
    for (const op of ops) if (op.verb === 'lock' && op.session) sessions.add(op.session);
    for (const s of sessions) if (!(await kv.sessionExists(s))) return { ok: false, errors: ops.flatMap((op, i) => (op.verb === 'lock' && op.session === s ? [{ opIndex: i, what: invalidSession(s).message }] : [])) };

    const results: { op: number; key: string; withValue: boolean }[] = [];
    const failures: TxnError[] = [];
    ops.forEach((op, i) => {
      const what = apply(kv, op, slots, trees, results, i);
      if (what) failures.push({ opIndex: i, what });
    });
    if (failures.length > 0) return { ok: false, errors: failures };

    let growth = 0;
    for (const [name, slot] of slots) if (slot.changed) growth += kvBytes(name, slot.rec) - kvBytes(name, slot.read ? parseStoredKv(slot.read) : undefined);
    kv.assertRoom(growth);
    const compare: Compare[] = [];
    const success: Op[] = [];
    for (const [name, slot] of slots) {
      const key = KEYS.kv + name;
      compare.push(slot.read ? { key, target: 'modRevision', op: 'equal', value: slot.read.modRevision } : { key, target: 'exists', value: false });
      if (!slot.changed) continue;
      if (slot.rec) success.push({ type: 'put', key, value: encodeStoredKv(slot.rec) });
      else if (slot.read) success.push({ type: 'delete', key });
    }
    for (const s of sessions) compare.push({ key: KEYS.sessions + s, target: 'exists', value: true });
    if (success.length === 0) success.push({ type: 'get', key: KEYS.kv });
    const res = await kv.store.txn({ compare, success });
    if (!res.succeeded) continue;
    const wrote = success.some((o) => o.type !== 'get');
    if (wrote) await kv.mirror.waitForRevision(res.revision);

    const out: TxnResultKv[] = [];
    for (const r of results) {
      const slot = slots.get(r.key)!;
      if (!slot.rec) continue;
      const createIndex = slot.read ? slot.read.createRevision : res.revision;
      const modifyIndex = slot.changed ? res.revision : slot.read!.modRevision;
      const pair: TxnResultKv = { key: r.key, value: r.withValue ? slot.rec.v : null, flags: slot.rec.f, lockIndex: slot.rec.l, createIndex, modifyIndex, withValue: r.withValue };
      if (slot.rec.s) pair.session = slot.rec.s;
      out.push(pair);
    }
    return { ok: true, results: out };
  }
  throw errors.conflict('the keys of this transaction are being changed concurrently; try again');
}

function validateOp(op: KvTxnOp, i: number): void {
  if (!KV_VERBS.includes(op.verb)) throw errors.invalid(`operation ${i}: unknown KV verb ${JSON.stringify(op.verb)}`);
  if (op.verb !== 'get-tree' && op.verb !== 'delete-tree') assertKey(op.key);
  if (op.value) assertValue(op.value);
  if (op.flags !== undefined) assertFlags(op.flags);
  // A negative or fractional index matches no stored revision and is not "0 = create only":
  // refused here so no verb can read it as "no condition" (a lost update).
  if (op.index !== undefined && (!Number.isSafeInteger(op.index) || op.index < 0)) throw errors.invalid(`operation ${i}: Index must be an unsigned integer`);
  if ((op.verb === 'lock' || op.verb === 'unlock' || op.verb === 'check-session') && !op.session)
    throw errors.invalid(`operation ${i}: ${op.verb} needs a Session`);
}

/** Applies one operation to the snapshot; returns an error text when its condition fails. */
function apply(kv: KvStore, op: KvTxnOp, slots: Map<string, Slot>, trees: Map<string, string[]>, results: { op: number; key: string; withValue: boolean }[], i: number): string | undefined {
  const slot = slots.get(op.key);
  const cur = slot?.rec;
  const curIndex = slot?.changed ? -1 : (slot?.read?.modRevision ?? 0);
  const value = op.value === undefined || op.value === null ? null : op.value.toString('base64');
  const write = (rec: StoredKv | undefined) => {
    slot!.rec = rec;
    slot!.changed = true;
  };
  switch (op.verb) {
    case 'set':
      write({ v: value, f: op.flags ?? 0, l: cur?.l ?? 0, ...(cur?.s ? { s: cur.s } : {}), ...keptLockDelay(cur) });
      results.push({ op: i, key: op.key, withValue: false });
      return undefined;
    case 'cas': {
      const want = op.index ?? 0;
      if ((want === 0 && cur) || (want > 0 && curIndex !== want)) return `failed to set key ${JSON.stringify(op.key)}, index is stale`;
      write({ v: value, f: op.flags ?? 0, l: cur?.l ?? 0, ...(cur?.s ? { s: cur.s } : {}), ...keptLockDelay(cur) });
      results.push({ op: i, key: op.key, withValue: false });
      return undefined;
    }
    case 'lock': {
      if (cur?.s && cur.s !== op.session) return `failed to lock key ${JSON.stringify(op.key)}, lock is already held`;
      if (cur?.s !== op.session && kv.lockDelayed(op.key, cur)) return `failed to lock key ${JSON.stringify(op.key)}, lock delay is in effect`;
      write({ v: value, f: op.flags ?? 0, l: (cur?.l ?? 0) + (cur?.s === op.session ? 0 : 1), s: op.session!, ...keptLockDelay(cur) });
      results.push({ op: i, key: op.key, withValue: false });
      return undefined;
    }
    case 'unlock': {
      if (!cur || cur.s !== op.session) return `failed to unlock key ${JSON.stringify(op.key)}, lock isn't held, or is held by another session`;
      write({ v: value, f: op.flags ?? 0, l: cur.l, ...keptLockDelay(cur) });
      results.push({ op: i, key: op.key, withValue: false });
      return undefined;
    }
    case 'get':
      if (!cur) return `key ${JSON.stringify(op.key)} doesn't exist`;
      results.push({ op: i, key: op.key, withValue: true });
      return undefined;
    case 'get-tree':
      for (const name of [...slots.keys()].filter((n) => n.startsWith(op.key)).sort()) {
        if (slots.get(name)!.rec) results.push({ op: i, key: name, withValue: true });
      }
      return undefined;
    case 'check-index':
      if (!cur) return `key ${JSON.stringify(op.key)} doesn't exist`;
      if (curIndex !== (op.index ?? 0)) return `current modify index ${curIndex} != ${op.index ?? 0}`;
      results.push({ op: i, key: op.key, withValue: false });
      return undefined;
    case 'check-session':
      if (!cur || cur.s !== op.session) return `failed session check for key ${JSON.stringify(op.key)}, current session ${JSON.stringify(cur?.s ?? '')} != ${JSON.stringify(op.session)}`;
      results.push({ op: i, key: op.key, withValue: false });
      return undefined;
    case 'check-not-exists':
      if (cur) return `key ${JSON.stringify(op.key)} exists`;
      return undefined;
    case 'delete':
      if (cur) write(undefined);
      return undefined;
    case 'delete-tree':
      for (const name of trees.get(op.key) ?? []) {
        const s = slots.get(name)!;
        if (s.rec) {
          s.rec = undefined;
          s.changed = true;
        }
      }
      for (const [name, s] of slots) {
        if (name.startsWith(op.key) && s.rec) {
          s.rec = undefined;
          s.changed = true;
        }
      }
      return undefined;
    case 'delete-cas':
      if (!cur || curIndex !== (op.index ?? 0)) return `failed to delete key ${JSON.stringify(op.key)}, index is stale`;
      write(undefined);
      return undefined;
  }
}

async function rangeRaw(kv: KvStore, prefix: string): Promise<{ name: string; kv: KeyValue }[]> {
  const { kvs } = await kv.store.range(KEYS.kv + prefix);
  return kvs.map((x) => ({ name: x.key.slice(KEYS.kv.length), kv: x }));
}
