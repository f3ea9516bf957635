import { createHash } from 'node:crypto';
import { errors } from '@beacon/core';
import type { LeaseId, StoreKind } from '../store/types.js';

/**
 * The snapshot file: one portable format for both backends, so a snapshot taken from the
 * embedded store restores into etcd and back. A copy of the SQLite file would tie it to one
 * backend and carry the store's private layout (schema version, lease bookkeeping) with it.
 *
 *   {"magic":"beacon-snapshot","version":1,"format":"jsonl",…header…}\n
 *   {"t":"lease","id":7,"ttlMs":30000}\n        one line per lease still holding a key
 *   {"t":"kv","key":"/beacon/…","value":"…","lease":7}\n
 *   sha256 <hex of every byte above>\n
 *
 * The checksum covers the header too, so a flipped byte anywhere is caught; a truncated file
 * has no trailer. Lines of JSON keep it readable with `head` and `grep`.
 */
export const SNAPSHOT_MAGIC = 'beacon-snapshot';
export const SNAPSHOT_VERSION = 1;
export const SNAPSHOT_MEDIA_TYPE = 'application/vnd.beacon.snapshot';

export interface SnapshotLease {
  id: LeaseId;
  ttlMs: number;
}

export interface SnapshotKv {
  key: string;
  value: string;
  /** 0: no lease; otherwise one of the snapshot's lease ids. */
  lease: LeaseId;
}

export interface SnapshotHeader {
  magic: typeof SNAPSHOT_MAGIC;
  version: typeof SNAPSHOT_VERSION;
  format: 'jsonl';
  /** The backend it was taken from (informational: any backend restores it). */
  backend: StoreKind;
  /** The store revision every record was read at. */
  revision: number;
  createdAt: string;
  leases: number;
  keys: number;
}

export interface Snapshot {
  header: SnapshotHeader;
  leases: SnapshotLease[];
  kvs: SnapshotKv[];
}

const TRAILER = 'sha256 ';

export function encodeSnapshot(s: Snapshot): Buffer {
  const lines = [JSON.stringify(s.header)];
  for (const l of s.leases) lines.push(JSON.stringify({ t: 'lease', id: l.id, ttlMs: l.ttlMs }));
  for (const kv of s.kvs) lines.push(JSON.stringify({ t: 'kv', key: kv.key, value: kv.value, lease: kv.lease }));
  const body = Buffer.from(lines.join('\n') + '\n', 'utf8');
  const sum = createHash('sha256').update(body).digest('hex');
  return Buffer.concat([body, Buffer.from(`${TRAILER}${sum}\n`, 'utf8')]);
}

/** Parses and checks a whole snapshot; any fault is an `invalid_argument` naming it, before anything is restored. */
export function decodeSnapshot(file: Buffer): Snapshot {
  const bad = (what: string) => errors.invalid(`not a valid Beacon snapshot: ${what}`);
  if (file.length === 0) throw bad('the file is empty');
  // The trailer is the last line: `sha256 <64 hex>\n`.
  const end = file.length - 1;
  const cut = file.lastIndexOf(0x0a, end - 1);
  const trailer = file.subarray(cut + 1).toString('utf8');
  if (file[end] !== 0x0a || cut < 0 || !/^sha256 [0-9a-f]{64}\n$/.test(trailer)) {
    throw bad(looksLikeHeader(file) ? 'the checksum line at its end is missing (the file is truncated)' : 'it does not start with a snapshot header');
  }
  const body = file.subarray(0, cut + 1);
  const sum = createHash('sha256').update(body).digest('hex');
  if (sum !== trailer.slice(TRAILER.length, -1)) throw bad('the checksum does not match its contents (the file is corrupted)');

  const lines = body.toString('utf8').split('\n');
  lines.pop(); // after the last newline
  const header = parseHeader(lines[0], bad);
  const leases: SnapshotLease[] = [];
  const kvs: SnapshotKv[] = [];
  const leaseIds = new Set<LeaseId>();
  const keys = new Set<string>();
  for (let i = 1; i < lines.length; i++) {
    const at = `line ${i + 1}`;
    const rec = parseLine(lines[i]!, bad, at);
    switch (rec.t) {
      case 'lease': {
        if (!isPositiveInt(rec.id)) throw bad(`${at}: a lease id must be a positive integer`);
        if (!isPositiveInt(rec.ttlMs)) throw bad(`${at}: a lease TTL must be a positive whole number of milliseconds`);
        if (kvs.length > 0) throw bad(`${at}: leases must come before keys`);
        if (leaseIds.has(rec.id)) throw bad(`${at}: lease ${rec.id} appears twice`);
        leaseIds.add(rec.id);
        leases.push({ id: rec.id, ttlMs: rec.ttlMs });
        break;
      }
      case 'kv': {
        if (typeof rec.key !== 'string' || rec.key.length === 0) throw bad(`${at}: a key must be a non-empty string`);
        if (typeof rec.value !== 'string') throw bad(`${at}: the value of ${rec.key} must be a string`);
        if (rec.lease !== 0 && !leaseIds.has(rec.lease as LeaseId)) throw bad(`${at}: key ${rec.key} names lease ${String(rec.lease)}, which the snapshot does not define`);
        if (keys.has(rec.key)) throw bad(`${at}: key ${rec.key} appears twice`);
        keys.add(rec.key);
        kvs.push({ key: rec.key, value: rec.value, lease: rec.lease as LeaseId });
        break;
      }
      default:
        throw bad(`${at}: unknown record type ${JSON.stringify(rec.t)}`);
    }
  }
  if (leases.length !== header.leases || kvs.length !== header.keys) {
    throw bad(`the header promises ${header.leases} leases and ${header.keys} keys, the file holds ${leases.length} and ${kvs.length}`);
  }
  return { header, leases, kvs };
}

function looksLikeHeader(file: Buffer): boolean {
  return file.subarray(0, 40).toString('utf8').includes(`"magic":"${SNAPSHOT_MAGIC}"`);
}

function parseHeader(line: string | undefined, bad: (w: string) => Error): SnapshotHeader {
  const h = parseLine(line ?? '', bad, 'the header') as Partial<Record<keyof SnapshotHeader, unknown>>;
  if (h.magic !== SNAPSHOT_MAGIC) throw bad('it does not start with a snapshot header');
  if (h.version !== SNAPSHOT_VERSION) throw bad(`version ${String(h.version)} is not one this server reads (it reads ${SNAPSHOT_VERSION})`);
  if (h.format !== 'jsonl') throw bad(`format ${JSON.stringify(h.format)} is not one this server reads (it reads "jsonl")`);
  if (h.backend !== 'embedded' && h.backend !== 'etcd') throw bad(`the header names an unknown backend ${JSON.stringify(h.backend)}`);
  if (!isNonNegativeInt(h.revision) || !isNonNegativeInt(h.leases) || !isNonNegativeInt(h.keys)) throw bad('the header needs whole-number revision, leases and keys');
  if (typeof h.createdAt !== 'string') throw bad('the header needs createdAt');
  return { magic: SNAPSHOT_MAGIC, version: SNAPSHOT_VERSION, format: 'jsonl', backend: h.backend, revision: h.revision, createdAt: h.createdAt, leases: h.leases, keys: h.keys };
}

function parseLine(line: string, bad: (w: string) => Error, at: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    throw bad(`${at} is not JSON`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad(`${at} is not a JSON object`);
  return v as Record<string, unknown>;
}

const isNonNegativeInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isPositiveInt = (v: unknown): v is number => isNonNegativeInt(v) && v > 0;
