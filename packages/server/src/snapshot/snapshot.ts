import { isBeaconError, type Clock } from '@beacon/core';
import { KEYS } from '../keys.js';
import type { LeaseId, Store } from '../store/types.js';
import type { Tombstone } from '../catalog/view.js';
import { parseJson } from '../util/json.js';
import { SNAPSHOT_MAGIC, SNAPSHOT_VERSION, type Snapshot, type SnapshotKv, type SnapshotLease } from './format.js';

/**
 * What a snapshot holds: everything under the store's root except the state of the running
 * servers (cluster membership, relayed TTL reports), which belongs to whoever runs the restore.
 */
export const SNAPSHOT_SCOPE = { prefix: KEYS.root, keep: [KEYS.members, KEYS.ttlReports, KEYS.sharedLeases, KEYS.heartbeats] } as const;

/**
 * A consistent copy while writes go on: one range read is one revision on both backends (the
 * embedded store reads SQLite synchronously between its write batches; etcd answers a range at
 * one revision). Lease TTLs are read afterwards; the keys of a lease that expired meanwhile are
 * left out, as the store deleted them moments later (kept without their lease they would never go).
 */
export async function takeSnapshot(store: Store, clock: Clock): Promise<Snapshot> {
  const { kvs, revision } = await store.range(SNAPSHOT_SCOPE.prefix);
  const inScope = kvs.filter((kv) => !SNAPSHOT_SCOPE.keep.some((k) => kv.key.startsWith(k)));
  const ttls = new Map<LeaseId, number | undefined>();
  for (const kv of inScope) {
    if (kv.lease === 0 || ttls.has(kv.lease)) continue;
    ttls.set(kv.lease, await leaseTtl(store, kv.lease));
  }
  const leases: SnapshotLease[] = [];
  for (const [id, ttlMs] of ttls) if (ttlMs !== undefined) leases.push({ id, ttlMs });
  const kept = inScope.filter((kv) => kv.lease === 0 || ttls.get(kv.lease) !== undefined);
  return {
    header: {
      magic: SNAPSHOT_MAGIC,
      version: SNAPSHOT_VERSION,
      format: 'jsonl',
      backend: store.kind,
      revision,
      createdAt: new Date(clock.now()).toISOString(),
      leases: leases.length,
      keys: kept.length,
    },
    leases,
    kvs: kept.map((kv) => ({ key: kv.key, value: kv.value, lease: kv.lease })),
  };
}

/**
 * Replaces the store's contents (outside {@link SNAPSHOT_SCOPE}'s `keep`) with the snapshot's;
 * resolves to the revision of the restore. Each instance the restore removes gets a tombstone in
 * the same revision, as a deregistration does, so its history and `explain` say the restore took
 * it (without one the catalog would put a leased instance's going down to its lease expiring).
 */
export async function restoreSnapshot(store: Store, snapshot: Snapshot, clock: Clock): Promise<number> {
  const restored = new Set(snapshot.kvs.map((kv) => kv.key));
  const tombstones = new Map<string, SnapshotKv>();
  const reason = `removed by restoring a snapshot taken at revision ${snapshot.header.revision}`;
  for (const kv of (await store.range(KEYS.instances)).kvs) {
    if (restored.has(kv.key)) continue;
    const id = kv.key.slice(KEYS.instances.length);
    const service = parseJson<{ service?: unknown }>(kv.value)?.service;
    const tomb: Tombstone = { id, service: typeof service === 'string' ? service : '', cause: 'api', reason, at: clock.now() };
    tombstones.set(KEYS.tombstone(id), { key: KEYS.tombstone(id), value: JSON.stringify(tomb), lease: 0 });
  }
  const kvs = [...snapshot.kvs.filter((kv) => !tombstones.has(kv.key)), ...tombstones.values()];
  return store.restore({ prefix: SNAPSHOT_SCOPE.prefix, keep: [...SNAPSHOT_SCOPE.keep], leases: snapshot.leases, kvs });
}

async function leaseTtl(store: Store, id: LeaseId): Promise<number | undefined> {
  try {
    return (await store.leaseInfo(id))?.ttlMs;
  } catch (err) {
    if (isBeaconError(err) && err.code === 'not_found') return undefined;
    throw err;
  }
}
