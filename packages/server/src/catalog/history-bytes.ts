import type { Instance } from '@beacon/core';
import type { HistoryEntry } from './view.js';

/** What an entry costs besides its strings: object headers, numbers, pointers (measured order of magnitude, not exact). */
const ENTRY_OVERHEAD = 256;
const CHECK_OVERHEAD = 128;

/**
 * An estimate of the memory a history entry keeps alive: its strings (reason and check output
 * above all, which a client chooses) plus the instance snapshot's checks, metadata and tags.
 * Strings are counted in UTF-16 code units, as V8 holds non-Latin-1 text; the bound this feeds
 * is a ceiling on growth, not an accounting to the byte.
 */
export function historyEntryBytes(h: HistoryEntry): number {
  const e = h.event;
  let n = ENTRY_OVERHEAD + e.service.length + e.instanceId.length + e.reason.length + (e.checkId?.length ?? 0) + (e.output?.length ?? 0);
  if (h.instance) n += instanceBytes(h.instance);
  return n;
}

function instanceBytes(i: Instance): number {
  let n = ENTRY_OVERHEAD + i.id.length + i.address.length + i.node.length + i.zone.length;
  for (const t of i.tags) n += t.length;
  for (const [k, v] of Object.entries(i.meta)) n += k.length + v.length;
  for (const c of i.checks) n += CHECK_OVERHEAD + c.id.length + c.output.length + (c.url?.length ?? 0) + (c.target?.length ?? 0);
  if (i.maintenance) n += i.maintenance.reason.length;
  if (i.draining) n += i.draining.reason.length;
  return n;
}
