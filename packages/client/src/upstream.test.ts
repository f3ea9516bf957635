import { describe, expect, it } from 'vitest';
import { ManualClock, seededRandom, type Instance } from '@beacon/core';
import { instanceFixture } from '@beacon/core/testing';
import { resolveFilter } from './filter.js';
import { ServiceView } from './view.js';
import { Upstream, type ServicePolicy } from './upstream.js';

/** Instances a1, a2, … listen on 8001, 8002, … with a named grpc port. */
const instance = (id: string, extra: Partial<Instance> = {}): Instance =>
  instanceFixture(id, { port: 8000 + Number(id.replace(/\D/g, '') || 0), ports: { grpc: 9000 }, ...extra });

const notReady = (id: string) => instance(id, { conditions: { ready: false, serving: true, terminating: true }, modifyIndex: 2 });

function setup(policy: ServicePolicy = {}, zone = '') {
  const clock = new ManualClock(0);
  const view = new ServiceView('api', { ...resolveFilter(), passing: false });
  const up = new Upstream('api', view, policy, { clock, random: seededRandom(5), zone }, resolveFilter());
  return { clock, view, up };
}

const ids = (up: Upstream) => up.candidates().map((e) => e.id);
const econnrefused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });

describe('Upstream', () => {
  it('with failover, an empty answer says that no DC of the policy had a ready instance (or that the filter left none)', () => {
    const clock = new ManualClock(0);
    const make = (filter: Parameters<typeof resolveFilter>[0]) => {
      const f = resolveFilter(filter);
      const view = new ServiceView('api', { ...f, passing: false });
      return { view, up: new Upstream('api', view, {}, { clock, random: seededRandom(5), zone: '' }, f) };
    };
    const plain = make({ failover: { nearest: 2 } });
    plain.view.reset(3, [notReady('i1')], 0, 'dc1');
    expect(() => plain.up.pick()).toThrow(
      expect.objectContaining({
        code: 'unavailable',
        message: 'no datacenter has a ready instance of api: not dc1, nor its failover datacenters (nearest:2)',
        details: expect.objectContaining({ reason: 'no_instances', failover: 'nearest:2', known: 1, notReady: 1 }),
      }),
    );
    const tagged = make({ tags: ['v2'], failover: { datacenters: ['dc3'] } });
    tagged.view.reset(3, [instance('i1')], 0, 'dc3');
    expect(() => tagged.up.pick()).toThrow(/^no ready instance of api in dc3 \(the datacenter failover dc3 chose by the service's ready instances\) matches the filter$/);
  });

  it('candidates are the ready instances, in view order; the named port is used', () => {
    const { view, up } = setup({ port: 'grpc' });
    view.reset(1, [instance('i1'), notReady('i2'), instance('i3')], 0);
    expect(ids(up)).toEqual(['i1', 'i3']);
    expect(up.endpoints()).toHaveLength(3);
    expect(up.endpoints()[0]!.origin('http:')).toBe('http://10.0.0.1:9000');
    view.apply(2, { type: 'upsert', instance: instance('i2', { modifyIndex: 3 }) }, 0);
    expect(ids(up)).toEqual(['i1', 'i2', 'i3']);
  });

  it('ejects an instance after consecutive connection failures and takes it back when the ejection ends', () => {
    const { clock, view, up } = setup({ outlier: { consecutiveConnectFailures: 2, baseEjectionMs: 1_000 }, breaker: false });
    view.reset(1, [instance('i1'), instance('i2'), instance('i3')], 0);
    const i2 = up.endpoints()[1]!;
    up.failed(i2, econnrefused, 1);
    expect(ids(up)).toContain('i2');
    up.failed(i2, econnrefused, 1);
    expect(ids(up)).toEqual(['i1', 'i3']);
    clock.advance(999);
    expect(ids(up)).toEqual(['i1', 'i3']);
    clock.advance(1);
    expect(ids(up)).toEqual(['i1', 'i2', 'i3']);
  });

  it('passes over an instance at its in-flight cap, and fails with too_many_requests when all are full', () => {
    const { view, up } = setup({ maxInflightPerInstance: 1, breaker: false });
    view.reset(1, [instance('i1'), instance('i2')], 0);
    const a = up.pick();
    up.started(a);
    const b = up.pick();
    expect(b.id).not.toBe(a.id);
    up.started(b);
    expect(() => up.pick()).toThrow(expect.objectContaining({ code: 'too_many_requests', details: expect.objectContaining({ reason: 'bulkhead' }) }));
    up.finished(a);
    expect(up.pick().id).toBe(a.id);
  });

  it('reports each ejection on onEject', () => {
    const { view, up } = setup({ outlier: { consecutive5xx: 2, baseEjectionMs: 1_000 }, breaker: false });
    view.reset(1, [instance('i1'), instance('i2')], 0);
    const seen: string[] = [];
    up.onEject((e) => seen.push(`${e.endpoint.id}@${e.until}`));
    const i1 = up.endpoints()[0]!;
    up.responded(i1, 503, 1);
    up.responded(i1, 503, 1);
    expect(seen).toEqual(['i1@1000']);
  });

  it('never ejects more than the allowed share of the pool', () => {
    const { view, up } = setup({ outlier: { consecutive5xx: 1, maxEjectedShare: 0.5 }, breaker: false });
    view.reset(1, [instance('i1'), instance('i2'), instance('i3'), instance('i4')], 0);
    for (const e of up.endpoints()) up.responded(e, 500, 1);
    expect(ids(up)).toHaveLength(2);
  });

  it('skips instances whose circuit is open, and says why when nothing is left', () => {
    const { clock, view, up } = setup({ outlier: false, breaker: { halfOpenAfterMs: 500 } });
    view.reset(1, [instance('i1'), notReady('i2')], 0);
    const i1 = up.endpoints()[0]!;
    for (let i = 0; i < 5; i++) {
      expect(up.pick().id).toBe('i1');
      up.responded(i1, 503, 1);
    }
    expect(ids(up)).toEqual([]);
    expect(() => up.pick()).toThrow(expect.objectContaining({ code: 'unavailable', details: expect.objectContaining({ reason: 'circuit_open', circuitOpen: 1, notReady: 1 }) }));
    clock.advance(500);
    expect(up.pick().id).toBe('i1'); // the half-open trial
    expect(() => up.pick()).toThrow(/circuit open/);
    up.responded(i1, 200, 1);
    expect(up.pick().id).toBe('i1');
  });

  it('a service the servers answer has no instance is not_found; while no server answers it is unavailable', () => {
    const { view, up } = setup();
    view.reset(1, [], 0);
    expect(() => up.pick()).toThrow(expect.objectContaining({ code: 'not_found', retryable: false, details: { reason: 'not_registered', service: 'api' } }));
    view.markStale(new Error('connect ECONNREFUSED'));
    expect(() => up.pick()).toThrow(expect.objectContaining({ code: 'unavailable', details: expect.objectContaining({ reason: 'no_instances', known: 0 }) }));
  });

  it('instances known but none eligible stay unavailable (it may pass)', () => {
    const { view, up } = setup();
    view.reset(1, [notReady('i1')], 0);
    expect(() => up.pick()).toThrow(expect.objectContaining({ code: 'unavailable', details: expect.objectContaining({ reason: 'no_instances', known: 1, notReady: 1 }) }));
  });

  it('avoids instances already tried by the call while others are left', () => {
    const { view, up } = setup({ balancer: 'round-robin' });
    view.reset(1, [instance('i1'), instance('i2')], 0);
    for (let i = 0; i < 10; i++) expect(up.pick(undefined, new Set(['i1'])).id).toBe('i2');
    expect(['i1', 'i2']).toContain(up.pick(undefined, new Set(['i1', 'i2'])).id);
  });

  it('slow start: an instance that becomes ready later ramps its share up over the window', () => {
    const { clock, view, up } = setup({ balancer: 'weighted-round-robin', slowStart: { windowMs: 10_000, minFactor: 0.1 }, breaker: false });
    view.reset(1, [instance('i1'), instance('i2')], 0);
    clock.advance(1_000);
    view.apply(2, { type: 'upsert', instance: instance('i3') }, clock.now());
    const share = () => {
      let n = 0;
      for (let i = 0; i < 1_000; i++) if (up.pick().id === 'i3') n++;
      return n / 1_000;
    };
    const early = share(); // factor 0.1: 0.1 / 2.1
    clock.advance(5_000);
    const mid = share(); // factor 0.5: 0.5 / 2.5
    clock.advance(5_000);
    const late = share(); // warmed up: 1 / 3
    expect(early).toBeCloseTo(0.1 / 2.1, 2);
    expect(mid).toBeCloseTo(0.5 / 2.5, 2);
    expect(late).toBeCloseTo(1 / 3, 2);
    // Instances present at the first answer were already serving: no ramp.
    expect(up.endpoints()[0]!.rampFactor(clock.now() - 10_000)).toBe(1);
  });

  it('an instance that turns ready again starts a new ramp', () => {
    const { clock, view, up } = setup({ slowStart: { windowMs: 10_000 } });
    view.reset(1, [instance('i1'), instance('i2')], 0);
    clock.advance(50_000);
    view.apply(2, { type: 'upsert', instance: notReady('i2') }, clock.now());
    view.apply(3, { type: 'upsert', instance: instance('i2', { modifyIndex: 3 }) }, clock.now());
    expect(up.endpoints()[1]!.rampFactor(clock.now())).toBe(0.1);
    expect(up.endpoints()[1]!.rampFactor(clock.now() + 5_000)).toBe(0.5);
  });

  it('peak EWMA: a slow answer raises the estimate at once, fast ones bring it down with time', () => {
    const { clock, view, up } = setup();
    view.reset(1, [instance('i1')], 0);
    const e = up.endpoints()[0]!;
    up.responded(e, 200, 2);
    up.responded(e, 200, 80);
    expect(e.latencyMs(clock.now())).toBe(80);
    clock.advance(10_000);
    up.responded(e, 200, 2);
    expect(e.latencyMs(clock.now())).toBeCloseTo(80 * Math.exp(-1) + 2 * (1 - Math.exp(-1)), 5);
    expect(e.latencyMs(clock.now() + 10_000)).toBeCloseTo(e.latencyMs(clock.now()) * Math.exp(-1), 5);
  });

  it('tracks requests in flight', () => {
    const { view, up } = setup();
    view.reset(1, [instance('i1')], 0);
    const e = up.pick();
    up.started(e);
    up.started(e);
    expect(e.inflight).toBe(2);
    up.finished(e);
    up.finished(e);
    up.finished(e);
    expect(e.inflight).toBe(0);
  });

  it('retry classes: idempotent requests retry 503s and resets; others only connection failures', async () => {
    const { view, up } = setup({ retry: { baseMs: 0, maxMs: 0 } });
    view.reset(1, [instance('i1')], 0);
    const idem = up.retryFor('idempotent')!;
    const other = up.retryFor('connect-only')!;
    expect(up.retryFor('none')).toBeUndefined();
    let n = 0;
    const res503 = () => ({ status: n++ < 2 ? 503 : 200, body: null });
    n = 0;
    await expect(idem.execute(res503)).resolves.toMatchObject({ status: 200 });
    n = 0;
    await expect(other.execute(res503)).resolves.toMatchObject({ status: 503 });
    const reset = Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' });
    let calls = 0;
    await expect(other.execute(() => (calls++ ? 'ok' : Promise.reject(reset)))).rejects.toBe(reset);
    calls = 0;
    await expect(other.execute(() => (calls++ ? 'ok' : Promise.reject(econnrefused)))).resolves.toBe('ok');
    expect(setup({ retry: false }).up.retryFor('idempotent')).toBeUndefined();
  });

  it('zone-aware routing judges a zone by every known instance, ready or not', () => {
    const { view, up } = setup({ balancer: { zoneAware: 'round-robin', minHealthyShare: 0.75 } }, 'eu');
    view.reset(1, [instance('i1', { zone: 'eu' }), notReady('i2'), instance('i3', { zone: 'us' })], 0);
    view.apply(2, { type: 'upsert', instance: { ...notReady('i2'), zone: 'eu', modifyIndex: 5 } }, 0);
    const t: Record<string, number> = {};
    for (let i = 0; i < 4_000; i++) {
      const id = up.pick().id;
      t[id] = (t[id] ?? 0) + 1;
    }
    // Half the eu zone is ready (< 75 %): 0.5 / 0.75 of the traffic stays local.
    expect(t.i1! / 4_000).toBeCloseTo(2 / 3, 1);
    expect(t.i2).toBeUndefined();
  });
});
