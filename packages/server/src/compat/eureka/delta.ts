import type { Clock, Instance } from '@beacon/core';
import type { CatalogView } from '../../catalog/view.js';
import type { PrefixMirror } from '../mirror.js';
import { instanceDoc, type ActionType, type InstanceDoc } from './documents.js';
import type { EurekaSide } from './model.js';

interface Entry {
  at: number;
  action: ActionType;
  id: string;
  /** Deleted instances are rendered when they go: nothing is left to render them from later. */
  doc?: InstanceDoc;
}

/**
 * Eureka's delta: what changed in the last few minutes (3 by default), from the catalog's change
 * feed and changes to the Eureka-only fields. Added and modified instances are rendered when the
 * delta is asked for, so the answer shows their state now.
 */
export class DeltaLog {
  private entries: Entry[] = [];
  private readonly lastInstance = new Map<string, Instance>();
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
    private readonly maxEntries = 100_000,
  ) {}

  start(): void {
    const { catalog, side } = this.deps;
    for (const s of catalog.services()) for (const i of catalog.service(s.name).instances) this.lastInstance.set(i.id, i);
    for (const e of side.all()) this.lastSide.set(e.name, e.value);
    this.offs.push(
      catalog.onChange((c) => {
        for (const e of c.events) {
          if (e.kind === 'deregistered') {
            const inst = this.lastInstance.get(e.instanceId);
            if (inst) this.push({ action: 'DELETED', id: e.instanceId, doc: instanceDoc(inst, this.lastSide.get(e.instanceId), this.deps.lastRenewal(e.instanceId), 'DELETED') });
            this.lastInstance.delete(e.instanceId);
            this.lastSide.delete(e.instanceId);
          } else {
            const inst = catalog.instance(e.instanceId);
            if (!inst) continue;
            this.lastInstance.set(inst.id, inst);
            this.push({ action: e.kind === 'registered' ? 'ADDED' : 'MODIFIED', id: inst.id });
          }
        }
      }),
      side.onChange((c) => {
        for (const e of c.put) {
          this.lastSide.set(e.name, e.value);
          if (catalog.instance(e.name)) this.push({ action: 'MODIFIED', id: e.name });
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

  private push(e: Omit<Entry, 'at'>): void {
    this.entries.push({ ...e, at: this.deps.clock.now() });
    if (this.entries.length > this.maxEntries) this.entries.splice(0, this.entries.length - this.maxEntries);
  }

  private prune(): void {
    const cutoff = this.deps.clock.now() - this.retentionMs;
    let n = 0;
    while (n < this.entries.length && this.entries[n]!.at < cutoff) n++;
    if (n) this.entries.splice(0, n);
  }
}
