import { errors } from '@beacon/core';
import type { KeyValue } from '../store/types.js';

/** A KV pair as stored: the value base64-encoded (it may be any bytes), Consul's flags and lock state. */
export interface StoredKv {
  /** base64 of the value; null for a key written without a value. */
  v: string | null;
  /** Consul's opaque flags. */
  f: number;
  /** Session holding the lock, if any. */
  s?: string;
  /** Times the lock was acquired (Consul's LockIndex). */
  l: number;
  /**
   * Lock delay: no session may acquire the key before this time (ms since epoch). Written with the
   * release of an ended session's lock, in the same write, so every server enforces it at once.
   */
  d?: number;
}

/** What a pair counts against the KV byte quota: its key and its value's bytes (not the record's overhead). */
export function kvBytes(key: string, rec: Pick<StoredKv, 'v'> | undefined): number {
  if (!rec) return 0;
  return Buffer.byteLength(key) + (rec.v === null ? 0 : Buffer.byteLength(rec.v, 'base64'));
}

/** The lock delay a write carries over from the record it replaces (plain writes never lift it). */
export function keptLockDelay(cur: StoredKv | undefined): Pick<StoredKv, 'd'> {
  return cur?.d ? { d: cur.d } : {};
}

/** A KV pair as readers see it. */
export interface KvPair {
  key: string;
  /** base64, as Consul puts it on the wire; null when the key holds no value. */
  value: string | null;
  flags: number;
  session?: string;
  lockIndex: number;
  createIndex: number;
  modifyIndex: number;
}

export const KV_LIMITS = {
  /** Consul's limit on one value. */
  valueBytes: 512 * 1024,
  keyChars: 2048,
  txnOps: 128,
} as const;

export function parseStoredKv(kv: KeyValue): StoredKv | undefined {
  try {
    const r = JSON.parse(kv.value) as StoredKv;
    if (typeof r !== 'object' || r === null || (r.v !== null && typeof r.v !== 'string') || typeof r.f !== 'number') return undefined;
    return r;
  } catch {
    return undefined;
  }
}

export function encodeStoredKv(r: StoredKv): string {
  return JSON.stringify(r);
}

export function toPair(key: string, r: StoredKv, createIndex: number, modifyIndex: number): KvPair {
  const p: KvPair = { key, value: r.v, flags: r.f, lockIndex: r.l, createIndex, modifyIndex };
  if (r.s) p.session = r.s;
  return p;
}

export function assertKey(key: string, what = 'key'): void {
  if (typeof key !== 'string' || key.length === 0) throw errors.invalid(`Missing ${what} name`);
  if (key.length > KV_LIMITS.keyChars) throw errors.invalid(`${what} is longer than ${KV_LIMITS.keyChars} characters`);
}

export function assertFlags(flags: number): void {
  if (!Number.isSafeInteger(flags) || flags < 0) throw errors.invalid('flags must be an unsigned integer below 2^53');
}

export function assertValue(value: Buffer | null): void {
  if (value && value.length > KV_LIMITS.valueBytes)
    throw errors.tooLarge(`Value exceeds ${KV_LIMITS.valueBytes} byte limit`);
}
