import { describe, expect, it } from 'vitest';
import { ManualClock, seededRandom, type ChangeEvent, type Instance } from '@beacon/core';
import { instanceFixture } from '@beacon/core/testing';
import { parseFederate } from './config.js';
import { answerWithFailover, failoverOrder, parseFailover } from './failover.js';
import { Federation, withoutCallerToken } from './federation.js';
import { RemoteCatalog, type RemoteChange } from './remote-catalog.js';
import type { CatalogReader } from '../catalog/types.js';

const web = (id: string, extra: Partial<Instance> = {}) => instanceFixture(id, { service: 'web', ...extra });
const notReady = { conditions: { ready: false, serving: true, terminating: false } };

function upsert(index: number, inst: Instance): RemoteChange {
  const event: ChangeEvent = { index, at: 0, service: inst.service, instanceId: inst.id, kind: 'registered', reason: 'test' };
  return { index, type: 'upsert', service: inst.service, id: inst.id, event, instance: inst };
}

describe('parseFederate', () => {
  it('reads NAME=URL[,URL…] and refuses what cannot be followed', () => {
    expect(parseFederate(['EU=https://10.1.0.5:8500/, http://10.1.0.6:8500'], 'dc1')).toEqual([{ name: 'eu', servers: ['https://10.1.0.5:8500', 'http://10.1.0.6:8500'] }]);
    expect(() => parseFederate(['dc1=http://x:1'], 'dc1')).toThrow(/own datacenter/);
    expect(() => parseFederate(['eu=http://a:1', 'eu=http://b:1'], 'dc1')).toThrow(/twice/);
    expect(() => parseFederate(['eu='], 'dc1')).toThrow(/no server URL/);
    expect(() => parseFederate(['eu=ftp://a'], 'dc1')).toThrow(/not http/);
    expect(() => parseFederate(['e_u=http://a:1'], 'dc1')).toThrow(/DNS label/);
    expect(() => parseFederate(['http://a:1'], 'dc1')).toThrow(/NAME=/);
  });
});

describe('parseFailover', () => {
  it('reads nearest:N and DC names, in any mix', () => {
    expect(parseFailover('nearest:2')).toEqual({ nearest: 2, datacenters: [] });
    expect(parseFailover('eu,ap,eu')).toEqual({ nearest: 0, datacenters: ['eu', 'ap'] });
    expect(parseFailover('nearest:1, AP')).toEqual({ nearest: 1, datacenters: ['ap'] });
    expect(() => parseFailover('nearest')).toThrow(/nearest:N/);
    expect(() => parseFailover(',')).toThrow(/give nearest/);
  });
});

describe('RemoteCatalog', () => {
  it('holds a reset, applies changes, wakes blocking readers of the changed service only, and replays from its history', async () => {
    const clock = new ManualClock(1_000);
    const view = new RemoteCatalog('eu', clock);
    expect([view.synced, view.stale]).toEqual([false, true]);
    view.reset(10, [web('w1'), instanceFixture('a1')]);
    expect([view.synced, view.stale, view.index]).toEqual([true, false, 10]);
    expect(view.service('web').instances.map((i) => i.id)).toEqual(['w1']);
    expect(view.node('n')).toEqual({ name: 'n', address: '10.0.0.1', meta: {}, services: ['api', 'web'] });

    const webWait = view.waitForService('web', 10, 5_000);
    let apiWoke = false;
    void view.waitForService('api', 10, 5_000).then(() => (apiWoke = true));
    view.apply(11, [upsert(11, web('w2'))]);
    expect((await webWait).instances.map((i) => i.id)).toEqual(['w1', 'w2']);
    await Promise.resolve();
    expect(apiWoke).toBe(false);
    expect(view.service('api').index).toBe(10);
    expect(view.replay(10).map((h) => h.event.instanceId)).toEqual(['w2']);
    expect(() => view.replay(9)).toThrow(/older than the retained history/);

    clock.advance(500);
    view.markStale();
    clock.advance(2_500);
    expect(view.staleSince).toBe(1_500);
    view.markCurrent();
    expect(view.stale).toBe(false);
    view.advance(15);
    expect(view.index).toBe(15);
    clock.advance(5_000);
    await new Promise((r) => setImmediate(r));
    expect(apiWoke).toBe(true);
    view.close();
  });
});

describe('failover', () => {
  const clock = new ManualClock(0);
  const local: Pick<CatalogReader, 'service'> & CatalogReader = new RemoteCatalog('home', clock);
  (local as RemoteCatalog).reset(1, [web('h1', notReady)]);
  const fed = new Federation({
    local: { name: 'home', catalog: local },
    remotes: [
      { name: 'eu', servers: ['http://127.0.0.1:1'] },
      { name: 'ap', servers: ['http://127.0.0.1:2'] },
      { name: 'us', servers: ['http://127.0.0.1:3'] },
    ],
    clock,
    random: seededRandom(1),
  });
  fed.remoteView('eu')!.reset(5, []);
  fed.remoteView('ap')!.reset(7, [web('a1')]);
  const all = (insts: readonly Instance[]) => [...insts];

  it('stays home while a ready instance is there; else takes the first DC of the policy with one, skipping DCs not followed yet', () => {
    // No RTT measured: the remotes are ordered by name (ap, eu, us).
    expect(failoverOrder(fed, { nearest: 1, datacenters: ['us', 'home'] })).toEqual(['ap', 'us']);
    const a = answerWithFailover(fed, 'web', { nearest: 0, datacenters: ['us', 'eu', 'ap'] }, all);
    expect([a.datacenter, a.failovers, a.instances.map((i) => i.id)]).toEqual(['ap', 2, ['a1']]);
    const none = answerWithFailover(fed, 'web', { nearest: 0, datacenters: ['eu'] }, all);
    expect([none.datacenter, none.failovers, none.instances.map((i) => i.id)]).toEqual(['home', 1, ['h1']]);
    expect(answerWithFailover(fed, 'web', undefined, all).datacenter).toBe('home');
    (local as RemoteCatalog).reset(2, [web('h1')]);
    expect(answerWithFailover(fed, 'web', { nearest: 3, datacenters: [] }, all).datacenter).toBe('home');
  });

  it('names the known DCs for an unknown one, and answers unavailable for one never followed', () => {
    expect(() => fed.datacenter('mars')).toThrow(/unknown datacenter "mars"; known: home, ap, eu, us/);
    expect(() => fed.datacenter('us')).toThrow(expect.objectContaining({ code: 'unavailable' }));
    expect(fed.datacenter('ap').local).toBe(false);
    expect(fed.datacenter(undefined).name).toBe('home');
  });
});

describe('withoutCallerToken', () => {
  it("keeps the caller's ?token= at home and the rest of the query as it was", () => {
    expect(withoutCallerToken('/v1/kv/a?dc=dc2&token=s3cret&recurse')).toBe('/v1/kv/a?dc=dc2&recurse=');
    expect(withoutCallerToken('/v1/kv/a?token=s3cret')).toBe('/v1/kv/a');
    expect(withoutCallerToken('/v1/kv/a?dc=dc2&recurse')).toBe('/v1/kv/a?dc=dc2&recurse');
    expect(withoutCallerToken('/v1/kv/a')).toBe('/v1/kv/a');
  });
});
