import { errors, type ChangeEvent, type Instance } from '@beacon/core';
import type { Ring } from './ring.js';
import type { HistoryFilter } from './types.js';

/** A history entry with the instance's state right after the change (absent for deletions). */
export interface HistoryEntry {
  event: ChangeEvent;
  instance?: Instance;
}

/** The newest `limit` entries of `ring` that pass `filter`, oldest first (the local and remote catalogs' history reads). */
export function selectHistory(ring: Ring<HistoryEntry>, filter: HistoryFilter, capacity: number): HistoryEntry[] {
  const limit = Math.min(filter.limit ?? capacity, capacity);
  const out: HistoryEntry[] = [];
  for (let k = ring.length - 1; k >= 0 && out.length < limit; k--) {
    const h = ring.at(k)!;
    const e = h.event;
    if (filter.since !== undefined && e.index <= filter.since) break;
    if (filter.service !== undefined && e.service !== filter.service) continue;
    if (filter.instanceId !== undefined && e.instanceId !== filter.instanceId) continue;
    if (filter.kind !== undefined && e.kind !== filter.kind) continue;
    out.push(h);
  }
  return out.reverse();
}

/** Entries after `since`, or a `compacted` error when the ring no longer reaches back that far (`floor`). */
export function replayHistory(ring: Ring<HistoryEntry>, since: number, floor: number, services?: ReadonlySet<string>): HistoryEntry[] {
  if (since < floor) throw errors.compacted(`index ${since} is older than the retained history (from ${floor})`);
  const out: HistoryEntry[] = [];
  for (const h of ring) {
    if (h.event.index <= since) continue;
    if (services && !services.has(h.event.service)) continue;
    out.push(h);
  }
  return out;
}
