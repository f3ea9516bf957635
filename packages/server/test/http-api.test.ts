import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSse, type SseEvent } from '@beacon/client';
import type { RunningServer } from '../src/server.js';
import { api, devServer } from './helpers.js';

let server: RunningServer;
beforeAll(async () => {
  server = await devServer();
});
afterAll(async () => {
  await server.close();
});

const reg = (n: number, extra: Record<string, unknown> = {}) => ({ service: 'api', address: `127.0.0.${n}`, port: 9000, ...extra });

/** Reads SSE events from a live stream until `count` arrived. */
async function readEvents(url: string, count: number, headers: Record<string, string> = {}, after?: () => Promise<void>): Promise<SseEvent[]> {
  const ac = new AbortController();
  const res = await fetch(url, { headers: { accept: 'text/event-stream', ...headers }, signal: ac.signal });
  expect(res.status).toBe(200);
  const out: SseEvent[] = [];
  const it = parseSse(res.body!)[Symbol.asyncIterator]();
  let first = true;
  while (out.length < count) {
    const next = it.next();
    if (first && after) {
      first = false;
      // Give the stream a moment to be subscribed before causing changes.
      await new Promise((r) => setTimeout(r, 50));
      await after();
    }
    const { value, done } = await next;
    if (done) break;
    out.push(value);
  }
  ac.abort();
  return out;
}

describe('native HTTP API', () => {
  it('registers, lists and filters instances, with X-Beacon-Index', async () => {
    const a = await api(server, 'PUT', '/api/v1/instances', reg(1, { tags: ['v1', 'eu'], meta: { version: '1.2' }, zone: 'eu-1' }));
    expect(a.status).toBe(200);
    expect(a.body.created).toBe(true);
    await api(server, 'PUT', '/api/v1/instances', reg(2, { tags: ['v2'], zone: 'us-1', checks: [{ kind: 'ttl', ttlMs: 60_000 }] }));
    const all = await api(server, 'GET', '/api/v1/services/api/instances');
    expect(all.status).toBe(200);
    expect(Number(all.headers.get('x-beacon-index'))).toBe(all.body.index);
    expect(all.body.instances).toHaveLength(2);
    const passing = await api(server, 'GET', '/api/v1/services/api/instances?passing');
    expect(passing.body.instances.map((i: any) => i.address)).toEqual(['127.0.0.1']);
    expect((await api(server, 'GET', '/api/v1/services/api/instances?tag=v1&tag=eu')).body.instances).toHaveLength(1);
    expect((await api(server, 'GET', '/api/v1/services/api/instances?tag=v1&tag=v2')).body.instances).toHaveLength(0);
    expect((await api(server, 'GET', '/api/v1/services/api/instances?meta.version=1.2')).body.instances).toHaveLength(1);
    expect((await api(server, 'GET', '/api/v1/services/api/instances?zone=us-1')).body.instances[0].address).toBe('127.0.0.2');
    const services = await api(server, 'GET', '/api/v1/services');
    expect(services.body.find((s: any) => s.name === 'api')).toMatchObject({ instances: 2, ready: 1, status: { passing: 1, critical: 1 } });
  });

  it('blocks until the service changes, and a change to another service does not wake it', async () => {
    const first = await api(server, 'GET', '/api/v1/services/blk/instances');
    const index = first.body.index;
    const t0 = Date.now();
    const parked = api(server, 'GET', `/api/v1/services/blk/instances?index=${index}&wait=400ms`);
    await new Promise((r) => setTimeout(r, 50));
    await api(server, 'PUT', '/api/v1/instances', { service: 'other', address: '127.0.0.9', port: 1 });
    const timedOut = await parked;
    expect(Date.now() - t0).toBeGreaterThanOrEqual(390);
    expect(timedOut.body.index).toBe(index);

    const woken = api(server, 'GET', `/api/v1/services/blk/instances?index=${index}&wait=20s`);
    await new Promise((r) => setTimeout(r, 50));
    const w = await api(server, 'PUT', '/api/v1/instances', { service: 'blk', address: '127.0.0.3', port: 1 });
    const got = await woken;
    expect(got.body.index).toBe(w.body.index);
    expect(got.body.instances).toHaveLength(1);
  });

  it('blocks the service listing until a service changes', async () => {
    const first = await api(server, 'GET', '/api/v1/services');
    const index = Number(first.headers.get('x-beacon-index'));
    const parked = api(server, 'GET', `/api/v1/services?index=${index}&wait=20s`);
    await new Promise((r) => setTimeout(r, 50));
    const w = await api(server, 'PUT', '/api/v1/instances', { service: 'listed', address: '127.0.0.4', port: 1 });
    const got = await parked;
    expect(Number(got.headers.get('x-beacon-index'))).toBeGreaterThanOrEqual(w.body.index);
    expect(got.body.map((s: any) => s.name)).toContain('listed');
  });

  it('heartbeats renew leases and answer 404 for unknown instances', async () => {
    const r = await api(server, 'PUT', '/api/v1/instances', reg(5, { ttlMs: 10_000 }));
    const hb = await api(server, 'PUT', `/api/v1/instances/${r.body.instance.id}/heartbeat`);
    expect(hb.status).toBe(200);
    expect(hb.body.ttlMs).toBe(10_000);
    const missing = await api(server, 'PUT', '/api/v1/instances/nope/heartbeat');
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('not_found');
  });

  it('maintenance, drain, TTL checks, explain and events', async () => {
    const r = await api(server, 'PUT', '/api/v1/instances', { service: 'pay', address: '127.0.0.7', port: 7, checks: [{ id: 'pay-ttl', kind: 'ttl', ttlMs: 60_000 }] });
    const id = r.body.instance.id;
    expect((await api(server, 'PUT', '/api/v1/checks/pay-ttl/pass', { note: 'all good' })).status).toBe(200);
    let e = await api(server, 'GET', `/api/v1/instances/${id}/explain`);
    expect(e.body).toMatchObject({ inAnswers: true, inPassingAnswers: true, checks: [{ id: 'pay-ttl', status: 'passing', output: 'all good' }] });
    await api(server, 'PUT', `/api/v1/instances/${id}/maintenance`, { reason: 'disk swap' });
    e = await api(server, 'GET', `/api/v1/instances/${id}/explain`);
    expect(e.body.inAnswers).toBe(false);
    expect(e.body.reasons).toContain('in maintenance: disk swap');
    await api(server, 'PUT', `/api/v1/instances/${id}/maintenance`, { enable: false });
    await api(server, 'PUT', `/api/v1/instances/${id}/drain`, { reason: 'deploy' });
    const inst = await api(server, 'GET', `/api/v1/instances/${id}`);
    expect(inst.body.conditions).toEqual({ ready: false, serving: true, terminating: true });
    expect((await api(server, 'PUT', '/api/v1/checks/unknown/pass')).status).toBe(404);
    const events = await api(server, 'GET', `/api/v1/events?instance=${id}`);
    expect(events.body.events.map((x: any) => x.kind)).toEqual(['registered', 'check', 'maintenance', 'maintenance', 'drain']);
    expect(events.body.events[1]).toMatchObject({ from: 'critical', to: 'passing' });
    await api(server, 'DELETE', `/api/v1/instances/${id}`);
    e = await api(server, 'GET', `/api/v1/instances/${id}/explain`);
    expect(e.body).toMatchObject({ registered: false, deregistered: { cause: 'api' } });
  });

  it('streams changes over SSE and resumes from Last-Event-ID without missing any', async () => {
    const base = `${server.httpUrl}/api/v1/watch?service=sse`;
    const events = await readEvents(base, 3, {}, async () => {
      await api(server, 'PUT', '/api/v1/instances', { service: 'sse', address: '127.0.1.1', port: 1 });
      await api(server, 'PUT', '/api/v1/instances', { service: 'sse', address: '127.0.1.2', port: 1 });
    });
    expect(events.map((e) => e.event)).toEqual(['reset', 'change', 'change']);
    const second = JSON.parse(events[2]!.data);
    expect(second).toMatchObject({ type: 'upsert', service: 'sse', instance: { address: '127.0.1.2' }, event: { kind: 'registered' } });
    const lastId = events[1]!.id!;
    // Changes made while "disconnected" arrive on resume.
    await api(server, 'DELETE', '/api/v1/instances/sse-127.0.1.1-1');
    const resumed = await readEvents(base, 2, { 'last-event-id': lastId });
    expect(resumed.map((e) => JSON.parse(e.data).type)).toEqual(['upsert', 'delete']);
    expect(JSON.parse(resumed[1]!.data).event).toMatchObject({ kind: 'deregistered', cause: 'api' });
    // An index older than history gets a reset with a full snapshot.
    const reset = await readEvents(`${base}&since=0`, 1);
    expect(reset[0]!.event).toBe('change'); // history still reaches index 0 on a young server
  });

  it('answers errors as {error:{code,message}} and never changes state on a bad request', async () => {
    const before = (await api(server, 'GET', '/api/v1/status')).body.index;
    const bad = await api(server, 'PUT', '/api/v1/instances', { service: 'x', address: 'a', port: 'eighty' });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('invalid_argument');
    expect((await api(server, 'PUT', '/api/v1/instances', { service: 'UPPER', address: 'a', port: 1 })).body.error.code).toBe('invalid_argument');
    expect((await api(server, 'PUT', '/api/v1/instances', '{not json')).status).toBe(400);
    const huge = await api(server, 'PUT', '/api/v1/instances', { service: 'x', address: 'a', port: 1, meta: { big: 'x'.repeat(300_000) } });
    expect(huge.status).toBe(413);
    expect(huge.body.error.code).toBe('payload_too_large');
    expect((await api(server, 'GET', '/api/v1/services/x/instances?index=1&wait=forever')).body.error.code).toBe('invalid_argument');
    expect((await api(server, 'GET', '/api/v1/nothing-here')).body.error.code).toBe('not_found');
    expect((await api(server, 'GET', '/api/v1/status')).body.index).toBe(before);
  });

  it('answers framework errors (bad URL, content type, JSON, size, route, long id) in the catalog shape', async () => {
    const before = (await api(server, 'GET', '/api/v1/status')).body.index;
    const cases: [method: string, path: string, body: string | undefined, type: string | undefined, status: number, code: string][] = [
      ['PUT', '/api/v1/instances/%ZZ/heartbeat', undefined, undefined, 400, 'invalid_argument'],
      ['GET', '/%E0%A4%A', undefined, undefined, 400, 'invalid_argument'],
      ['PUT', '/api/v1/instances', JSON.stringify(reg(9)), 'text/plain', 415, 'unsupported_media_type'],
      ['PUT', '/api/v1/instances', 'service=x', 'application/x-www-form-urlencoded', 415, 'unsupported_media_type'],
      ['PUT', '/api/v1/instances', '{"service":', 'application/json', 400, 'invalid_argument'],
      ['PUT', '/api/v1/instances', JSON.stringify({ ...reg(9), meta: { big: 'x'.repeat(300_000) } }), 'application/json', 413, 'payload_too_large'],
      ['PATCH', '/api/v1/instances', undefined, undefined, 404, 'not_found'],
      ['GET', `/api/v1/instances/${'a'.repeat(600)}`, undefined, undefined, 400, 'invalid_argument'],
      ['GET', '/api/v1/services/x/instances?limit=-1&index=abc', undefined, undefined, 400, 'invalid_argument'],
    ];
    for (const [method, path, body, type, status, code] of cases) {
      const res = await fetch(server.httpUrl + path, { method, ...(type ? { headers: { 'content-type': type } } : {}), ...(body ? { body } : {}) });
      const text = await res.text();
      expect({ path, status: res.status, type: res.headers.get('content-type') }).toEqual({ path, status, type: 'application/json; charset=utf-8' });
      const parsed = JSON.parse(text);
      expect(Object.keys(parsed)).toEqual(['error']);
      expect(parsed.error).toEqual({ code, message: expect.any(String) });
    }
    // The compat APIs keep their own plain-text shape for the same malformed URL.
    for (const path of ['/v1/catalog/service/%ZZ', '/eureka/apps/%ZZ']) {
      const res = await fetch(server.httpUrl + path);
      expect([res.status, res.headers.get('content-type')]).toEqual([400, 'text/plain; charset=utf-8']);
      expect(await res.text()).toContain('not a valid url');
    }
    expect((await api(server, 'GET', '/api/v1/status')).body.index).toBe(before);
  });

  it('serves status, metrics and the OpenAPI document', async () => {
    const s = await api(server, 'GET', '/api/v1/status');
    expect(s.body).toMatchObject({ store: 'embedded', node: 'test-node', stale: false });
    const m = await api(server, 'GET', '/metrics');
    expect(m.body).toContain('beacon_instances{status="passing"}');
    expect(m.body).toContain('beacon_http_request_duration_seconds_bucket');
    expect(m.body).toContain('beacon_watchers');
    const doc = await api(server, 'GET', '/api/v1/openapi.json');
    expect(doc.body.openapi).toBe('3.0.3');
    expect(Object.keys(doc.body.paths)).toEqual(expect.arrayContaining(['/api/v1/instances', '/api/v1/services/{name}/instances', '/api/v1/watch']));
  });
});
