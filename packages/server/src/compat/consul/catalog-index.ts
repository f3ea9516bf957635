import type { CancelSignal } from '../../util/cancel.js';
import type { Clock } from '@beacon/core';
import type { CatalogView } from '../../catalog/view.js';
import type { NodeDirectory } from '../nodes.js';
import { IndexWaiters } from '../../util/index-waiters.js';

/**
 * The index of catalog-wide answers (`/v1/catalog/services`, `/v1/catalog/nodes`,
 * `/v1/health/state/…`): it moves with instance and node changes only, so KV writes and sessions
 * (which share the store's revision) neither move it nor wake its watchers.
 */
export class CatalogIndex {
  private current: number;
  private readonly waiters: IndexWaiters;
  private readonly offs: (() => void)[] = [];

  constructor(
    catalog: CatalogView,
    nodes: NodeDirectory,
    clock: Clock,
  ) {
    this.waiters = new IndexWaiters(clock);
    this.current = Math.max(1, catalog.index, nodes.mirror.index);
    this.offs.push(
      catalog.onChange((c) => {
        if (c.reset || c.services.size > 0 || c.instanceIds.size > 0) this.bump(c.index);
      }),
      nodes.mirror.onChange((c) => this.bump(c.index)),
    );
  }

  get index(): number {
    return this.current;
  }

  close(): void {
    for (const off of this.offs) off();
    this.waiters.close();
  }

  wait(minIndex: number, timeoutMs: number, signal?: CancelSignal): Promise<void> {
    return this.waiters.wait(this.current, minIndex, timeoutMs, signal);
  }

  private bump(index: number): void {
    if (index <= this.current) return;
    this.current = index;
    this.waiters.wake(index);
  }
}
