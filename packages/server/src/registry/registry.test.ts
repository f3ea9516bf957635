import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock, isBeaconError } from '@beacon/core';
import { openEmbeddedStore } from '../store/embedded.js';
import type { Store } from '../store/types.js';
import { CatalogView } from '../catalog/view.js';
import { Registry } from './registry.js';
import { explainInstance } from './explain.js';
import { KEYS } from '../keys.js';

/** Lets group commits and the watch feed run (they are driven by the event loop, not the clock). */
async function settle(): Promise<void> {
  for (let k = 0; k < 5; k++) await new Promise((r) => setImmediate(r));
}

interface Rig {
  clock: ManualClock;
  store: Store;
  catalog: CatalogView;
  registry: Registry;
  close(): Promise<void>;
}

/** A logger that keeps what it is given, to read back what an operator would see. */
function recordingLogger() {
  const lines: { level: string; obj: Record<string, unknown>; msg: string | undefined }[] = [];
  const at = (level: string) => (obj: unknown, msg?: string) => void lines.push({ level, obj: obj as Record<string, unknown>, msg });
  return { lines, info: at('info'), warn: at('warn'), error: at('error') };
}

async function rig(opts: { path?: string; clock?: ManualClock; historySize?: number; historyBytes?: number; logger?: ReturnType<typeof recordingLogger> } = {}): Promise<Rig> {
  const clock = opts.clock ?? new ManualClock();
  const store = await openEmbeddedStore({ path: opts.path ?? ':memory:', clock });
  const catalog = new CatalogView({
    store,
    clock,
    ...(opts.historySize ? { historySize: opts.historySize } : {}),
    ...(opts.historyBytes ? { historyBytes: opts.historyBytes } : {}),
    ...(opts.logger ? { logger: opts.logger } : {}),
  });
  await catalog.start();
  const registry = new Registry({ store, catalog, clock, nodeName: 'n1' });
  registry.start();
  return {
    clock,
    store,
    catalog,
    registry,
    async close() {
      registry.close();
      await catalog.close();
      await store.close();
    },
  };
}

const open: Rig[] = [];
afterEach(async () => {
  while (open.length) await open.pop()!.close();
});
async function make(opts?: Parameters<typeof rig>[0]): Promise<Rig> {
  const r = await rig(opts);
  open.push(r);
  return r;
}

const web = (n: number, extra: Record<string, unknown> = {}) => ({ service: 'web', address: `10.0.0.${n}`, port: 8080, ...extra });

describe('registry: registration', () => {
  it('derives a stable id, fills defaults, and is ready at once without checks', async () => {
    const { registry, catalog } = await make();
    const r = await registry.register(web(1));
    expect(r.created).toBe(true);
    expect(r.instance.id).toBe('web-10.0.0.1-8080');
    expect(r.instance).toMatchObject({ weight: 1, node: 'n1', source: 'api', status: 'passing', conditions: { ready: true, serving: true, terminating: false } });
    expect(catalog.service('web').instances.map((i) => i.id)).toEqual(['web-10.0.0.1-8080']);
    const again = await registry.register(web(1));
    expect(again.created).toBe(false);
    expect(again.index).toBe(r.index); // nothing changed, nothing written
  });

  it('writes an id the catalog does not hold without reading the store first; re-registering reads it', async () => {
    const r = await make();
    let reads = 0;
    const get = r.store.get.bind(r.store);
    r.store.get = (key) => {
      reads++;
      return get(key);
    };
    await r.registry.register(web(1));
    expect(reads).toBe(0);
    await r.registry.register(web(1, { tags: ['v2'] }));
    expect(reads).toBe(1);
  });

  it('a record the catalog has not seen yet is updated, not overwritten: the compare fails and the retry reads it', async () => {
    const { registry, store, clock } = await make();
    const first = await registry.register(web(1));
    const record = JSON.parse((await store.get(KEYS.instance(first.instance.id)))!.value) as Record<string, unknown>;
    await registry.deregister(first.instance.id);
    clock.advance(5_000);
    // Written behind the registry's back and not awaited: the catalog cannot have applied it
    // when the registration below decides whether to read.
    const put = store.put(KEYS.instance(first.instance.id), JSON.stringify({ ...record, tags: ['restored'] }));
    let reads = 0;
    const get = store.get.bind(store);
    store.get = (key) => {
      reads++;
      return get(key);
    };
    const again = await registry.register(web(1, { tags: ['v2'] }));
    await put;
    expect(reads).toBe(1); // the unread first attempt lost its compare; the retry read the record
    expect(again.created).toBe(false);
    expect(again.instance.tags).toEqual(['v2']);
    expect(again.instance.registeredAt).toBe(record.registeredAt);
  });

  it('rejects bad input with invalid_argument and writes nothing', async () => {
    const { registry, catalog } = await make();
    const before = catalog.index;
    for (const bad of [
      { service: 'Bad_Name', address: 'x', port: 1 },
      { service: 'web', address: '', port: 1 },
      { service: 'web', address: 'x', port: 70000 },
      { service: 'web', address: 'x', port: 1, tags: Array.from({ length: 65 }, (_, k) => `t${k}`) },
      { service: 'web', address: 'x', port: 1, checks: [{ kind: 'ttl' }] },
      { service: 'web', address: 'x', port: 1, checks: [{ kind: 'http', url: 'ftp://x' }] },
      { service: 'web', address: 'x', port: 1, ttlMs: 10 },
    ]) {
      await expect(registry.register(bad as never)).rejects.toMatchObject({ code: 'invalid_argument' });
    }
    expect(catalog.index).toBe(before);
  });

  it('refuses addresses, ids and check headers that are unsafe to store, naming the field', async () => {
    const { registry, catalog } = await make();
    const before = catalog.index;
    const hostileAddresses = ['../../etc/passwd', 'a\u0000b', 'a\r\nX-Injected: 1', 'a b', 'evil\u202ecom', '9007199254740992', '2852039166', '0', '169.254.169.254.'];
    for (const address of hostileAddresses)
      await expect(registry.register(web(1, { address })), address).rejects.toMatchObject({ code: 'invalid_argument', message: expect.stringContaining('address') });
    for (const id of ['.', '..', 'a\u0000b', 'a\nb', 'x\u202e', ' padded', 'x'.repeat(129)])
      await expect(registry.register(web(1, { id })), JSON.stringify(id)).rejects.toMatchObject({ code: 'invalid_argument', message: expect.stringContaining('instance id') });
    const check = (headers: Record<string, string[]>) => web(1, { checks: [{ kind: 'http', url: 'http://10.0.0.1/', headers }] });
    await expect(registry.register(check({ 'X-A': ['ok\r\nSet-Cookie: x=1'] }))).rejects.toMatchObject({ message: expect.stringContaining('without CR, LF, NUL') });
    await expect(registry.register(check({ 'X A': ['ok'] }))).rejects.toMatchObject({ message: expect.stringContaining('not a valid HTTP field name') });
    await expect(registry.register(web(1, { checks: [{ kind: 'tcp', target: '0xa9fea9fe:80' }] }))).rejects.toMatchObject({ code: 'invalid_argument' });
    for (const node of ['..', 'n\r\n1', 'n\u0000'])
      await expect(registry.register(web(1, { node })), JSON.stringify(node)).rejects.toMatchObject({ message: expect.stringContaining('node name') });
    expect(catalog.index).toBe(before);
  });

  it('stores addresses and check targets in canonical form, and takes ids with "/" (Consul allows them)', async () => {
    const { registry } = await make();
    const v6 = await registry.register({ service: 'web', address: '[FD00:0:0::5]', port: 80, checks: [{ kind: 'tcp', target: '[FD00::5]:80' }] });
    expect(v6.instance.address).toBe('fd00::5');
    expect(v6.instance.checks[0]!.target).toBe('[fd00::5]:80');
    expect((await registry.register(web(1, { address: '::ffff:10.0.0.1' }))).instance.address).toBe('10.0.0.1');
    expect((await registry.register(web(1, { address: 'Web-1.Example.COM.' }))).instance.address).toBe('web-1.example.com');
    const patroni = await registry.register(web(2, { id: 'pg-scope/node-1', checks: [{ kind: 'ttl', ttlMs: 30_000 }] }));
    expect(patroni.instance.id).toBe('pg-scope/node-1');
    expect(patroni.instance.checks[0]!.id).toBe('service:pg-scope/node-1');
  });

  it('keeps the state of existing checks when an instance registers again', async () => {
    const { registry, catalog } = await make();
    await registry.register(web(1, { checks: [{ kind: 'ttl', ttlMs: 10_000 }] }));
    const id = 'service:web-10.0.0.1-8080';
    expect(catalog.instanceByCheck(id)?.checks[0]?.status).toBe('critical');
    await registry.reportCheck(id, 'passing', 'ok');
    await registry.register(web(1, { tags: ['v2'], checks: [{ kind: 'ttl', ttlMs: 10_000 }] }));
    const inst = catalog.instance('web-10.0.0.1-8080')!;
    expect(inst.tags).toEqual(['v2']);
    expect(inst.checks[0]!.status).toBe('passing');
  });
});

describe('registry: leases', () => {
  it('expires a lease at exactly its TTL and not before', async () => {
    const { registry, catalog, clock } = await make();
    await registry.register(web(1, { ttlMs: 5_000 }));
    clock.advance(4_999);
    await settle();
    expect(catalog.instance('web-10.0.0.1-8080')).toBeDefined();
    clock.advance(1);
    await settle();
    expect(catalog.instance('web-10.0.0.1-8080')).toBeUndefined();
    const last = catalog.history({ instanceId: 'web-10.0.0.1-8080' }).at(-1)!;
    expect(last).toMatchObject({ kind: 'deregistered', cause: 'lease_expired' });
  });

  it('logs one line per deregistration with its service, id and cause, lease expiry included', async () => {
    const logger = recordingLogger();
    const { registry, clock } = await make({ logger });
    await registry.register(web(1, { ttlMs: 5_000 }));
    await registry.register(web(2));
    await registry.deregister('web-10.0.0.2-8080');
    clock.advance(5_000);
    await settle();
    const lines = logger.lines.filter((l) => l.msg === 'instance deregistered');
    expect(lines.map((l) => [l.level, l.obj.service, l.obj.id, l.obj.cause])).toEqual([
      ['info', 'web', 'web-10.0.0.2-8080', 'api'],
      ['info', 'web', 'web-10.0.0.1-8080', 'lease_expired'],
    ]);
  });

  it('heartbeats renew the lease; an unknown instance gets not_found so the client registers again', async () => {
    const { registry, catalog, clock } = await make();
    await registry.register(web(1, { ttlMs: 5_000 }));
    for (let k = 0; k < 5; k++) {
      clock.advance(4_000);
      await settle();
      const hb = await registry.heartbeat('web-10.0.0.1-8080');
      expect(hb.ttlMs).toBe(5_000);
    }
    expect(catalog.instance('web-10.0.0.1-8080')).toBeDefined();
    await expect(registry.heartbeat('nope')).rejects.toMatchObject({ code: 'not_found' });
    clock.advance(5_000);
    await settle();
    await expect(registry.heartbeat('web-10.0.0.1-8080')).rejects.toMatchObject({ code: 'not_found' });
  });

  it('gives every lease one full TTL of grace after a restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'beacon-reg-'));
    try {
      const clock = new ManualClock();
      const a = await rig({ path: join(dir, 'db'), clock });
      await a.registry.register(web(1, { ttlMs: 5_000 }));
      await a.registry.register(web(2)); // no lease: durable
      clock.advance(4_000);
      await a.close();
      clock.advance(60_000); // down far longer than the TTL
      const b = await make({ path: join(dir, 'db'), clock });
      expect(b.catalog.service('web').instances.map((i) => i.address)).toEqual(['10.0.0.1', '10.0.0.2']);
      clock.advance(4_999);
      await settle();
      expect(b.catalog.instance('web-10.0.0.1-8080')).toBeDefined();
      clock.advance(1);
      await settle();
      expect(b.catalog.service('web').instances.map((i) => i.address)).toEqual(['10.0.0.2']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('registry: checks', () => {
  it('turns a TTL check critical when no update arrives, and deregisters after the critical period', async () => {
    const { registry, catalog, clock } = await make();
    await registry.register(web(1, { checks: [{ kind: 'ttl', ttlMs: 2_000, deregisterCriticalAfterMs: 10_000, status: 'passing' }] }));
    const id = 'web-10.0.0.1-8080';
    expect(catalog.instance(id)!.conditions.ready).toBe(true);
    clock.advance(2_000);
    await settle();
    expect(catalog.instance(id)!.checks[0]).toMatchObject({ status: 'critical', output: 'TTL expired' });
    expect(catalog.instance(id)!.conditions.ready).toBe(false);
    clock.advance(9_999);
    await settle();
    expect(catalog.instance(id)).toBeDefined();
    clock.advance(1);
    await settle();
    expect(catalog.instance(id)).toBeUndefined();
    expect(catalog.history({ instanceId: id }).at(-1)).toMatchObject({ kind: 'deregistered', cause: 'critical_too_long' });
  });

  it('a pass within the critical period stops the deregistration', async () => {
    const { registry, catalog, clock } = await make();
    await registry.register(web(1, { checks: [{ kind: 'ttl', ttlMs: 60_000, deregisterCriticalAfterMs: 10_000 }] }));
    clock.advance(9_000);
    await settle();
    await registry.reportCheck('service:web-10.0.0.1-8080', 'passing');
    clock.advance(5_000);
    await settle();
    expect(catalog.instance('web-10.0.0.1-8080')?.status).toBe('passing');
  });

  it('a readiness check failing leaves the instance serving but not ready', async () => {
    const { registry, catalog } = await make();
    await registry.register(web(1, { checks: [{ kind: 'ttl', ttlMs: 60_000, role: 'readiness', status: 'passing' }] }));
    await registry.reportCheck('service:web-10.0.0.1-8080', 'critical', 'db down');
    const i = catalog.instance('web-10.0.0.1-8080')!;
    expect(i.conditions).toEqual({ ready: false, serving: true, terminating: false });
    const ev = catalog.history({ kind: 'check' }).at(-1)!;
    expect(ev).toMatchObject({ from: 'passing', to: 'critical', output: 'db down' });
  });

  it('writes only on status change; the latest output is kept in memory for explain', async () => {
    const { registry, catalog, store, clock } = await make();
    await registry.register(web(1, { checks: [{ kind: 'ttl', ttlMs: 60_000 }] }));
    const first = await registry.reportCheck('service:web-10.0.0.1-8080', 'passing', 'one');
    const second = await registry.reportCheck('service:web-10.0.0.1-8080', 'passing', 'two');
    expect(second.index).toBe(first.index);
    const e = await explainInstance({ catalog, registry, clock }, 'web-10.0.0.1-8080');
    expect(e!.checks[0]!.output).toBe('two');
  });
});

describe('registry: maintenance, drain, explain', () => {
  it('maintenance and drain take the instance out with a reason', async () => {
    const { registry, catalog, store, clock } = await make();
    await registry.register(web(1, { ttlMs: 30_000 }));
    const id = 'web-10.0.0.1-8080';
    await registry.setMaintenance(id, true, 'kernel upgrade');
    let e = await explainInstance({ catalog, registry, clock }, id);
    expect(e).toMatchObject({ inAnswers: false, status: 'critical', reasons: ['in maintenance: kernel upgrade'], lease: { ttlMs: 30_000 } });
    await registry.setMaintenance(id, false, '');
    await registry.setDraining(id, true, 'deploy');
    e = await explainInstance({ catalog, registry, clock }, id);
    expect(e).toMatchObject({ inAnswers: false, conditions: { ready: false, serving: true, terminating: true } });
    await registry.deregister(id);
    e = await explainInstance({ catalog, registry, clock }, id);
    expect(e).toMatchObject({ registered: false, deregistered: { cause: 'api' } });
  });
});

describe('catalog view', () => {
  it('keeps per-service indexes: a write to A never wakes a watcher of B', async () => {
    const { registry, catalog, clock } = await make();
    await registry.register(web(1));
    await registry.register({ service: 'db', address: '10.0.1.1', port: 5432 });
    const bIndex = catalog.service('db').index;
    let woke = false;
    const waiting = catalog.waitForService('db', bIndex, 60_000).then(() => (woke = true));
    await registry.register(web(2));
    await registry.register(web(3));
    await settle();
    expect(woke).toBe(false);
    expect(catalog.service('db').index).toBe(bIndex);
    await registry.register({ service: 'db', address: '10.0.1.2', port: 5432 });
    await waiting;
    expect(woke).toBe(true);
    expect(catalog.service('db').index).toBeGreaterThan(bIndex);
    void clock;
  });

  it('bounds history and reports compaction for older indexes', async () => {
    const { registry, catalog } = await make({ historySize: 5 });
    const start = catalog.index;
    for (let k = 1; k <= 10; k++) await registry.register(web(k));
    expect(catalog.history()).toHaveLength(5);
    expect(catalog.historyFloor).toBeGreaterThan(start);
    expect(() => catalog.replay(start)).toThrow(expect.objectContaining({ code: 'compacted' }));
    expect(catalog.replay(catalog.historyFloor)).toHaveLength(5);
  });

  it('bounds history by bytes too: a flood of large check outputs drops the oldest entries, not memory', async () => {
    const { registry, catalog } = await make({ historyBytes: 200_000 });
    await registry.register(web(1, { id: 'noisy', checks: [{ id: 'noisy-ttl', kind: 'ttl', ttlMs: 60_000 }] }));
    const start = catalog.index;
    const big = 'x'.repeat(4096);
    for (let k = 0; k < 60; k++) await registry.reportCheck('noisy-ttl', k % 2 ? 'passing' : 'critical', `${k} ${big}`);
    const kept = catalog.history();
    // Each change holds its output twice (the event and the instance snapshot): about 8 KiB an entry.
    expect(kept.length).toBeGreaterThan(10);
    expect(kept.length).toBeLessThan(30);
    expect(kept.at(-1)!.output).toMatch(/^59 /);
    expect(catalog.historyFloor).toBeGreaterThan(start);
    expect(() => catalog.replay(start)).toThrow(expect.objectContaining({ code: 'compacted' }));
  });

  it('an unknown service answers empty with a stable index', async () => {
    const { catalog, registry } = await make();
    await registry.register(web(1));
    expect(catalog.service('nothing')).toEqual({ name: 'nothing', index: 1, instances: [] });
    try {
      await registry.deregister('nothing');
    } catch (e) {
      expect(isBeaconError(e) && e.code).toBe('not_found');
    }
  });
});

describe('registry: node checks', () => {
  it('takes every instance on the node out of the answers while a node check is critical, and explains why', async () => {
    const { registry, catalog, clock, store } = await make();
    await registry.register(web(1, { node: 'n1' }));
    await registry.register({ service: 'db', address: '10.0.0.2', port: 5432, node: 'n1' });
    await registry.register(web(3, { node: 'n2' }));
    const on = (node: string) => [...catalog.service('web').instances, ...catalog.service('db').instances].filter((i) => i.node === node);

    await registry.registerNodeCheck('n1', { id: 'mem', name: 'memory', kind: 'ttl', ttlMs: 10_000, status: 'passing' });
    expect(catalog.nodeChecks('n1')).toMatchObject([{ id: 'mem', status: 'passing', kind: 'ttl' }]);
    expect(on('n1').every((i) => i.conditions.ready)).toBe(true);

    // The TTL runs out: critical, and both instances on n1 leave; n2's stays.
    clock.advance(10_000);
    await settle();
    expect(catalog.nodeCheck('mem')?.check).toMatchObject({ status: 'critical', output: 'TTL expired' });
    expect(on('n1').map((i) => [i.id, i.status, i.conditions.ready])).toEqual([
      [catalog.service('web').instances.find((i) => i.node === 'n1')!.id, 'critical', false],
      [catalog.service('db').instances[0]!.id, 'critical', false],
    ]);
    expect(on('n2').every((i) => i.conditions.ready && i.status === 'passing')).toBe(true);
    const id = on('n1')[0]!.id;
    const why = await explainInstance({ catalog, registry, clock }, id);
    expect(why?.inAnswers).toBe(false);
    expect(why?.reasons).toEqual([expect.stringMatching(/^node check memory \(mem\) of node n1 is critical: TTL expired/)]);
    expect(why?.checks).toContainEqual(expect.objectContaining({ id: 'mem', node: 'n1', status: 'critical' }));
    expect(why?.recentEvents.at(-1)).toMatchObject({ kind: 'check', checkId: 'mem', from: 'passing', to: 'critical' });

    // A pass brings them back and re-arms the TTL; re-registering keeps the state.
    await registry.reportCheck('mem', 'passing', 'ok');
    expect(on('n1').every((i) => i.conditions.ready)).toBe(true);
    await registry.registerNodeCheck('n1', { id: 'mem', name: 'memory', kind: 'ttl', ttlMs: 10_000 });
    expect(catalog.nodeCheck('mem')?.check.status).toBe('passing');
    clock.advance(9_999);
    await settle();
    expect(catalog.nodeCheck('mem')?.check.status).toBe('passing');
    await registry.setCheckStatus('mem', 'critical', 'down', 'test');
    expect(on('n1').some((i) => i.conditions.ready)).toBe(false);

    // An instance registered later on the node is judged with the node's checks too.
    await registry.register(web(4, { node: 'n1' }));
    expect(on('n1').find((i) => i.address === '10.0.0.4')?.conditions.ready).toBe(false);

    await registry.deregisterNodeCheck('mem');
    expect(catalog.nodeChecks('n1')).toEqual([]);
    expect(on('n1').every((i) => i.conditions.ready && i.status === 'passing')).toBe(true);
    await expect(registry.deregisterNodeCheck('mem')).rejects.toThrow(/not registered/);
  });

  it('survives a restart (the view lists node checks before the instances they judge) and refuses a check id taken on another node', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'beacon-nodecheck-'));
    try {
      const clock = new ManualClock();
      const a = await rig({ path: join(dir, 'db'), clock });
      await a.registry.register(web(1, { node: 'n1' }));
      await a.registry.registerNodeCheck('n1', { id: 'disk', kind: 'ttl', ttlMs: 60_000, status: 'critical' });
      await expect(a.registry.registerNodeCheck('n2', { id: 'disk', kind: 'ttl', ttlMs: 60_000 })).rejects.toThrow(/node check of node n1/);
      await a.close();
      const b = await make({ path: join(dir, 'db'), clock });
      expect(b.catalog.nodeChecks('n1')).toMatchObject([{ id: 'disk', status: 'critical' }]);
      expect(b.catalog.service('web').instances[0]?.conditions.ready).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
