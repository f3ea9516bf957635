import type { Clock } from '@beacon/core';
import type { CatalogView } from '../../catalog/view.js';
import { Ring } from '../../catalog/ring.js';
import type { PrefixMirror } from '../mirror.js';
import { instanceDoc, type ActionType, type InstanceDoc } from './documents.js';
import type { EurekaSide } from './model.js';

interface Entry {
  /** Milliseconds after the log's `base`: a small integer held in the entry, where a clock reading would be a separate heap number. */
  at: number;
  action: ActionType;
  id: string;
  /** Deleted instances are rendered when they go: nothing is left to render them from later. */
  doc: InstanceDoc | undefined;
}

/**
 * Eureka's delta: what changed in the last few minutes (3 by default), from the catalog's change
 * feed and changes to the Eureka-only fields. Added and modified instances are rendered when the
 * delta is asked for, so the answer shows their state now.
 */
export class DeltaLog {
  private readonly entries: Ring<Entry>;
  private readonly base: number;
  private readonly lastSide = new Map<string, EurekaSide>();
  private readonly offs: (() => void)[] = [];

  constructor(
    private readonly deps: {
      catalog: CatalogView;
      side: PrefixMirror<EurekaSide>;
      clock: Clock;
      lastRenewal: (id: string) => number | undefined;
    },
    private readonly retentionMs = 180_000,
    maxEntries = 100_000,
  ) {
    this.entries = new Ring<Entry>(maxEntries);
    this.base = deps.clock.now();
  }

  start(): void {
    const { catalog, side } = this.deps;
    for (const e of side.all()) this.lastSide.set(e.name, e.value);
    this.offs.push(
      catalog.onChange((c) => {
        for (const e of c.events) {
          if (e.kind === 'deregistered') {
            // The catalog hands over what it deleted: no second copy of every instance is kept here.
            const inst = c.removed?.get(e.instanceId);
            if (inst) this.push('DELETED', e.instanceId, instanceDoc(inst, this.lastSide.get(e.instanceId), this.deps.lastRenewal(e.instanceId), 'DELETED'));
            this.lastSide.delete(e.instanceId);
          } else {
            if (!catalog.instance(e.instanceId)) continue;
            this.push(e.kind === 'registered' ? 'ADDED' : 'MODIFIED', e.instanceId, undefined);
          }
        }
      }),
      side.onChange((c) => {
        for (const e of c.put) {
          this.lastSide.set(e.name, e.value);
          if (catalog.instance(e.name)) this.push('MODIFIED', e.name, undefined);
        }
      }),
    );
  }

  close(): void {
    for (const off of this.offs) off();
  }

  /** The changes still within the window, oldest first, rendered. */
  changes(): InstanceDoc[] {
    this.prune();
    const out: InstanceDoc[] = [];
    for (const e of this.entries) {
      if (e.doc) {
        out.push(e.doc);
        continue;
      }
      const inst = this.deps.catalog.instance(e.id);
      if (!inst) continue;
      out.push(instanceDoc(inst, this.deps.side.get(e.id)?.value, this.deps.lastRenewal(e.id), e.action));
    }
    return out;
  }

  /**
   * Every entry is built by this one literal, so all share one hidden class: built with a spread
   * (`{ ...e, at }`) each of 100,000 entries had its own, ~220 bytes of map and descriptors apiece.
   */
  private push(action: ActionType, id: string, doc: InstanceDoc | undefined): void {
    // Expired entries go as new ones come, not only when a client asks for the delta: a log nobody
    // reads would otherwise hold its maximum of entries for good.
    this.prune();
    this.entries.push({ at: this.deps.clock.now() - this.base, action, id, doc });
  }

  private prune(): void {
    const cutoff = this.deps.clock.now() - this.base - this.retentionMs;
    while (this.entries.length > 0 && this.entries.at(0)!.at < cutoff) this.entries.shift();
  }
}
