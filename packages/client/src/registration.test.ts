import { describe, expect, it } from 'vitest';
import { BeaconError, ManualClock, seededRandom, type Instance } from '@beacon/core';
import { registerInstance, type RegistrationEvent } from './registration.js';
import type { HttpAnswer, RequestOptions } from './http.js';

async function flush(): Promise<void> {
  await new Promise((r) => setImmediate(r));
}

/** Moves the clock in 10 ms steps, letting the (instant) fake I/O settle after each. */
async function run(clock: ManualClock, ms: number): Promise<void> {
  for (let t = 0; t < ms; t += 10) {
    clock.advance(10);
    await flush();
  }
}

type Reply = unknown | Error | ((opts: RequestOptions) => unknown);

/** A scripted Beacon API: per "METHOD path-suffix", what to answer; records every call with its clock time. */
class FakeApi {
  calls: { at: number; method: string; path: string; body?: unknown }[] = [];
  heartbeat: Reply = { ttlMs: 3_000, remainingMs: 3_000 };
  constructor(private readonly clock: ManualClock) {}
  async request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<HttpAnswer<T>> {
    this.calls.push({ at: this.clock.now(), method, path, body: opts.body });
    let reply: Reply;
    if (method === 'PUT' && path === '/api/v1/instances') {
      const b = opts.body as { id?: string; service: string; address: string; port: number };
      reply = { index: 1, created: true, instance: { id: b.id ?? `${b.service}-${b.address}-${b.port}`, service: b.service } as Instance };
    } else if (path.endsWith('/heartbeat')) reply = this.heartbeat;
    else reply = { index: 2 };
    if (typeof reply === 'function') reply = (reply as (o: RequestOptions) => unknown)(opts);
    if (reply instanceof Error) throw reply;
    return { status: 200, body: reply as T, headers: new Headers(), server: 'fake' };
  }
  count(suffix: string): number {
    return this.calls.filter((c) => c.path.endsWith(suffix)).length;
  }
}

async function setup(opts: { ttlMs?: number; drainGraceMs?: number; jitter?: number } = {}) {
  const clock = new ManualClock(0);
  const http = new FakeApi(clock);
  const reg = await registerInstance({ http, clock, random: seededRandom(11) }, { service: 'pay', address: '10.0.0.1', port: 80 }, { ttlMs: 3_000, ...opts });
  const events: RegistrationEvent[] = [];
  reg.onEvent((e) => events.push(e));
  return { clock, http, reg, events };
}

describe('Registration (manual clock)', () => {
  it('heartbeats at a third of the TTL, each interval jittered within ±10 %', async () => {
    const { clock, http } = await setup({ ttlMs: 3_000 });
    await run(clock, 5_000);
    const beats = http.calls.filter((c) => c.path.endsWith('/heartbeat')).map((c) => c.at);
    const gaps = beats.map((t, i) => t - (i ? beats[i - 1]! : 0));
    expect(beats.length).toBeGreaterThanOrEqual(4);
    for (const g of gaps) {
      expect(g).toBeGreaterThanOrEqual(900);
      expect(g).toBeLessThanOrEqual(1_100 + 10);
    }
    expect(new Set(gaps.map((g) => Math.round(g))).size).toBeGreaterThan(1);
    expect(http.calls[0]!.body).toMatchObject({ service: 'pay', ttlMs: 3_000 });
  });

  it('registers again (same id, same data) when Beacon answers 404', async () => {
    const { clock, http, events, reg } = await setup();
    http.heartbeat = new BeaconError('not_found', 'instance pay-10.0.0.1-80 is not registered; register it again');
    clock.advance(1_100);
    await flush();
    const puts = http.calls.filter((c) => c.method === 'PUT' && c.path === '/api/v1/instances');
    expect(puts).toHaveLength(2);
    expect(puts[1]!.body).toMatchObject({ id: reg.id, service: 'pay', address: '10.0.0.1', port: 80, ttlMs: 3_000 });
    expect(events.map((e) => e.type)).toEqual(['reregistered']);
    // And goes back to the normal rhythm.
    http.heartbeat = { ttlMs: 3_000, remainingMs: 3_000 };
    clock.advance(1_100);
    await flush();
    expect(events.map((e) => e.type)).toEqual(['reregistered', 'heartbeat']);
  });

  it('retries a failed heartbeat sooner, backing off but never later than the normal interval', async () => {
    const { clock, http, events } = await setup({ ttlMs: 9_000 });
    http.heartbeat = new BeaconError('unavailable', 'connect ECONNREFUSED');
    await run(clock, 8_300); // the first heartbeat (≈3 s) fails, and every one after it

    const beats = http.calls.filter((c) => c.path.endsWith('/heartbeat')).map((c) => c.at);
    const gaps = beats.slice(1).map((t, i) => t - beats[i]!);
    expect(beats[0]).toBeGreaterThanOrEqual(2_700);
    expect(gaps[0]).toBeLessThanOrEqual(250 + 10);
    expect(gaps[1]).toBeLessThanOrEqual(500 + 10);
    for (const g of gaps) expect(g).toBeLessThanOrEqual(3_000 + 10);
    expect(gaps[3]).toBeGreaterThan(gaps[0]!);
    expect(events.every((e) => e.type === 'error' && e.during === 'heartbeat')).toBe(true);
  });

  it('close(): drain, wait the grace period on the clock, deregister — and no re-registration while draining', async () => {
    const { clock, http, reg, events } = await setup({ drainGraceMs: 5_000 });
    const closing = reg.close();
    await flush();
    expect(http.calls.at(-1)).toMatchObject({ method: 'PUT', path: '/api/v1/instances/pay-10.0.0.1-80/drain', body: { reason: 'shutting down', enable: true } });
    expect(reg.status).toBe('draining');
    http.heartbeat = new BeaconError('not_found', 'gone');
    clock.advance(4_999);
    await flush();
    expect(http.count('/pay-10.0.0.1-80')).toBe(0); // no DELETE yet
    expect(http.calls.filter((c) => c.method === 'PUT' && c.path === '/api/v1/instances')).toHaveLength(1);
    clock.advance(1);
    await closing;
    expect(http.calls.at(-1)).toMatchObject({ method: 'DELETE', path: '/api/v1/instances/pay-10.0.0.1-80' });
    expect(reg.status).toBe('closed');
    expect(events.map((e) => e.type).filter((t) => t !== 'error')).toEqual(['draining', 'deregistered']);
    clock.advance(60_000);
    await flush();
    expect(http.calls.at(-1)!.method).toBe('DELETE');
    expect(clock.timers).toBe(0);
  });

  it('close() still deregisters when the drain call fails, and reports it', async () => {
    const { clock, http, reg, events } = await setup({ drainGraceMs: 100 });
    const orig = http.request.bind(http);
    http.request = (async (method: string, path: string, opts?: RequestOptions) => {
      if (path.endsWith('/drain')) throw new BeaconError('unavailable', 'no server');
      return orig(method, path, opts);
    }) as typeof http.request;
    const closing = reg.close();
    await flush();
    clock.advance(100);
    await closing;
    expect(events.map((e) => (e.type === 'error' ? `error:${e.during}` : e.type))).toEqual(['error:drain', 'deregistered']);
    expect(reg.close()).toBe(closing);
  });

  it('validates its options', async () => {
    const clock = new ManualClock();
    const http = new FakeApi(clock);
    const deps = { http, clock, random: seededRandom(1) };
    const inst = { service: 'pay', address: 'a', port: 1 };
    await expect(registerInstance(deps, inst, { ttlMs: 500 })).rejects.toMatchObject({ code: 'invalid_argument' });
    await expect(registerInstance(deps, inst, { heartbeatFraction: 1 })).rejects.toMatchObject({ code: 'invalid_argument' });
    await expect(registerInstance(deps, inst, { jitter: 2 })).rejects.toMatchObject({ code: 'invalid_argument' });
    expect(http.calls).toHaveLength(0);
  });
});
