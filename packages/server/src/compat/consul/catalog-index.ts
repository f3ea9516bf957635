import type { Clock } from '@beacon/core';
import type { CatalogView } from '../../catalog/view.js';
import type { NodeDirectory } from '../nodes.js';

/**
 * The index of catalog-wide answers (`/v1/catalog/services`, `/v1/catalog/nodes`,
 * `/v1/health/state/…`): it moves with instance and node changes only, so KV writes and sessions
 * (which share the store's revision) neither move it nor wake its watchers.
 */
export class CatalogIndex {
  private current: number;
  private readonly waiters = new Set<{ minIndex: number; resolve: () => void }>();
  private readonly offs: (() => void)[] = [];

  constructor(
    catalog: CatalogView,
    nodes: NodeDirectory,
    private readonly clock: Clock,
  ) {
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
    for (const w of [...this.waiters]) w.resolve();
  }

  wait(minIndex: number, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    if (this.current > minIndex || timeoutMs <= 0 || signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const finish = () => {
        timer.cancel();
        signal?.removeEventListener('abort', finish);
        this.waiters.delete(w);
        resolve();
      };
      const w = { minIndex, resolve: finish };
      this.waiters.add(w);
      const timer = this.clock.setTimeout(finish, timeoutMs);
      signal?.addEventListener('abort', finish, { once: true });
    });
  }

  private bump(index: number): void {
    if (index <= this.current) return;
    this.current = index;
    for (const w of [...this.waiters]) if (this.current > w.minIndex) w.resolve();
  }
}
