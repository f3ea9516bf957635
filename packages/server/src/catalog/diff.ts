import type { Instance } from '@beacon/core';
import type { HistoryEntry } from './view.js';

/** One instance that exists at both ends of a diff but differs. */
export interface ChangedInstance {
  id: string;
  /** Its state at `from`, when the retained history still holds it. */
  before?: Instance;
  after: Instance;
  /** Top-level fields that differ (`checks`, `status`, `tags`…); every field when `before` is unknown. */
  fields: string[];
}

export interface ServiceDiff {
  service: string;
  from: number;
  to: number;
  added: Instance[];
  removed: { id: string; before?: Instance }[];
  changed: ChangedInstance[];
}

/** Bookkeeping: these move on every change and say nothing about what changed. */
const IGNORED = new Set(['modifyIndex', 'change']);

function changedFields(before: Instance | undefined, after: Instance): string[] {
  const keys = new Set([...Object.keys(after), ...(before ? Object.keys(before) : [])]);
  const out: string[] = [];
  for (const k of keys) {
    if (IGNORED.has(k)) continue;
    const a = (before as unknown as Record<string, unknown> | undefined)?.[k];
    const b = (after as unknown as Record<string, unknown>)[k];
    if (before === undefined || JSON.stringify(a) !== JSON.stringify(b)) out.push(k);
  }
  return out.sort();
}

/**
 * How a service's instances differ between two indexes, from its history entries (oldest first,
 * each with the instance's state after the change). An instance untouched between the two is
 * absent from the answer. The caller makes sure `from` is within the retained history.
 */
export function diffService(service: string, entries: readonly HistoryEntry[], from: number, to: number): ServiceDiff {
  interface Track {
    atFrom?: HistoryEntry;
    firstAfter?: HistoryEntry;
    atTo?: HistoryEntry;
  }
  const byId = new Map<string, Track>();
  for (const h of entries) {
    const e = h.event;
    if (e.service !== service || e.index > to) continue;
    let t = byId.get(e.instanceId);
    if (!t) byId.set(e.instanceId, (t = {}));
    if (e.index <= from) t.atFrom = h;
    else {
      t.firstAfter ??= h;
      t.atTo = h;
    }
  }
  const diff: ServiceDiff = { service, from, to, added: [], removed: [], changed: [] };
  for (const [id, t] of byId) {
    if (!t.atTo) continue;
    const before = t.atFrom?.instance;
    // Without an entry at or before `from`, a first change that registers it means it was not there yet.
    const existedAtFrom = t.atFrom ? before !== undefined : t.firstAfter!.event.kind !== 'registered';
    const after = t.atTo.instance;
    if (!existedAtFrom && after) diff.added.push(after);
    else if (existedAtFrom && !after) diff.removed.push({ id, ...(before ? { before } : {}) });
    else if (existedAtFrom && after) {
      const fields = changedFields(before, after);
      if (fields.length > 0) diff.changed.push({ id, ...(before ? { before } : {}), after, fields });
    }
  }
  const byIdOrder = (a: { id: string }, b: { id: string }) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
  diff.added.sort(byIdOrder);
  diff.removed.sort(byIdOrder);
  diff.changed.sort(byIdOrder);
  return diff;
}
