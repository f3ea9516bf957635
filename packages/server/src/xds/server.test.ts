import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock, type Instance } from '@beacon/core';
import { instanceFixture } from '@beacon/core/testing';
import type { CatalogChange, ServiceEntry, ServiceSummary } from '../catalog/types.js';
import { XdsServer } from './server.js';

/** A catalog that changes when the test says so, and tells its listeners. */
class ChangingCatalog {
  private readonly byService = new Map<string, Instance[]>();
  private readonly listeners = new Set<(c: CatalogChange) => void>();
  private index = 1;
  set(service: string, ...instances: Instance[]): void {
    this.byService.set(service, instances.map((i) => ({ ...i, service })));
    const change: CatalogChange = { index: ++this.index, services: new Set([service]), events: [], instanceIds: new Set(), reset: false };
    for (const l of this.listeners) l(change);
  }
  services(): ServiceSummary[] {
    return [...this.byService.keys()].map((name) => ({ name, index: 1, tags: [], instances: 1, status: { passing: 1, warning: 0, critical: 0 }, ready: 1 }));
  }
  service(name: string): ServiceEntry {
    return { name, index: this.index, instances: this.byService.get(name) ?? [] };
  }
  onChange(l: (c: CatalogChange) => void): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }
}

const open: XdsServer[] = [];
afterEach(async () => {
  for (const s of open.splice(0)) await s.close();
});

describe('XdsServer', () => {
  it('coalesces the catalog changes of one window into one push, and stops following the catalog once closed', async () => {
    const clock = new ManualClock();
    const catalog = new ChangingCatalog();
    const xds = new XdsServer({ catalog, clock, addr: '127.0.0.1:0', coalesceMs: 5 });
    open.push(xds);
    let pushes = 0;
    xds.countWith({ pushed: () => pushes++, sent: () => {}, acked: () => {}, nacked: () => {} });
    await xds.listen();
    catalog.set('a', instanceFixture('a1'));
    catalog.set('a', instanceFixture('a1'), instanceFixture('a2'));
    catalog.set('b', instanceFixture('b1'));
    clock.advance(4);
    expect(pushes).toBe(0);
    clock.advance(1);
    expect(pushes).toBe(1);
    catalog.set('b', instanceFixture('b2'));
    clock.advance(5);
    expect(pushes).toBe(2);
    await xds.close();
    catalog.set('b', instanceFixture('b3'));
    clock.advance(5);
    expect(pushes).toBe(2);
  });
});
