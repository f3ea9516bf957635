import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Agent, fetch as undiciFetch, type Response } from 'undici';
import type { RunningServer } from '../src/server.js';
import { devServer } from './helpers.js';

// Each client below is a different loopback source address, so its limits start fresh.
const agents = new Map<string, Agent>();
function from(localAddress: string): Agent {
  let a = agents.get(localAddress);
  if (!a) agents.set(localAddress, (a = new Agent({ localAddress })));
  return a;
}
function call(s: RunningServer, source: string, method: string, path: string, body?: string, signal?: AbortSignal): Promise<Response> {
  return undiciFetch(s.httpUrl + path, {
    method,
    dispatcher: from(source),
    ...(body !== undefined ? { body, headers: { 'content-type': 'application/json' } } : {}),
    ...(signal ? { signal } : {}),
  });
}

let server: RunningServer | undefined;
const streams: AbortController[] = [];
afterEach(async () => {
  for (const c of streams.splice(0)) c.abort();
  await server?.close();
  server = undefined;
  for (const a of agents.values()) await a.destroy();
  agents.clear();
});

describe('write rate per client', () => {
  it('answers 429 with Retry-After in each API’s shape once a client spends its burst, and other clients still write', async () => {
    server = await devServer({ limits: { writeRate: 1, writeBurst: 2 } });
    const s = server;
    const reg = JSON.stringify({ service: 'web', address: '127.0.0.1', port: 8080 });
    // Native: the third write from 127.0.0.2 within a second is refused.
    expect((await call(s, '127.0.0.2', 'PUT', '/api/v1/instances', reg)).status).toBe(200);
    expect((await call(s, '127.0.0.2', 'PUT', '/api/v1/instances', reg)).status).toBe(200);
    const native = await call(s, '127.0.0.2', 'PUT', '/api/v1/instances', reg);
    expect(native.status).toBe(429);
    expect(native.headers.get('retry-after')).toBe('1');
    expect(await native.json()).toEqual({ error: { code: 'too_many_requests', message: expect.stringContaining('too many writes') } });
    // Consul: plain text, as Consul answers errors.
    for (let i = 0; i < 2; i++) expect((await call(s, '127.0.0.3', 'PUT', '/v1/kv/a', 'x')).status).toBe(200);
    const consul = await call(s, '127.0.0.3', 'PUT', '/v1/kv/a', 'x');
    expect([consul.status, consul.headers.get('retry-after'), consul.headers.get('content-type')]).toEqual([429, '1', 'text/plain; charset=utf-8']);
    expect(await consul.text()).toMatch(/too many writes/);
    // Eureka: counted before routing, so even writes that fail count.
    for (let i = 0; i < 2; i++) expect((await call(s, '127.0.0.4', 'DELETE', '/eureka/apps/NOPE/x')).status).toBe(404);
    const eureka = await call(s, '127.0.0.4', 'DELETE', '/eureka/apps/NOPE/x');
    expect([eureka.status, eureka.headers.get('retry-after')]).toEqual([429, '1']);
    // Reads are not writes, and another client has its own bucket.
    expect((await call(s, '127.0.0.2', 'GET', '/api/v1/services')).status).toBe(200);
    expect((await call(s, '127.0.0.5', 'PUT', '/v1/kv/b', 'y')).status).toBe(200);
  });
});

describe('watches per client', () => {
  it('refuses SSE streams beyond the per-client cap while another client’s read and stream go through', async () => {
    server = await devServer({ limits: { watchesPerClient: 5, watchRate: 0 } });
    const s = server;
    const open: Response[] = [];
    for (let i = 0; i < 5; i++) open.push(await call(s, '127.0.0.1', 'GET', '/api/v1/watch', undefined, abortable()));
    expect(open.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
    for (let i = 0; i < 3; i++) {
      const refused = await call(s, '127.0.0.1', 'GET', '/api/v1/watch');
      expect([refused.status, refused.headers.get('retry-after')]).toEqual([429, '5']);
      expect(await refused.json()).toEqual({ error: { code: 'too_many_requests', message: expect.stringContaining('per-client cap') } });
    }
    const t0 = performance.now();
    const read = await call(s, '127.0.0.2', 'GET', '/api/v1/services');
    expect(read.status).toBe(200);
    expect(performance.now() - t0).toBeLessThan(500);
    const other = new AbortController();
    streams.push(other);
    expect((await call(s, '127.0.0.2', 'GET', '/api/v1/watch', undefined, other.signal)).status).toBe(200);
    // A closed stream gives its slot back.
    streams[0]!.abort();
    await expect.poll(() => server!.deps.limits.sse.open).toBe(5);
    expect((await call(s, '127.0.0.1', 'GET', '/api/v1/watch', undefined, abortable())).status).toBe(200);
  });

  it('caps parked blocking queries per client across the native and Consul APIs', async () => {
    server = await devServer({ limits: { blockingPerClient: 2, watchRate: 0 } });
    const s = server;
    await call(s, '127.0.0.1', 'PUT', '/v1/kv/k', 'v');
    const index = s.catalog.index;
    const kvIndex = Number((await call(s, '127.0.0.1', 'GET', '/v1/kv/k')).headers.get('x-consul-index'));
    // Held until the test ends (afterEach aborts them).
    for (const path of [`/api/v1/services?index=${index}&wait=30s`, `/v1/kv/k?index=${kvIndex}&wait=30s`])
      void call(s, '127.0.0.2', 'GET', path, undefined, abortable()).catch(() => undefined);
    await expect.poll(() => server!.deps.limits.blocking.open).toBe(2);
    const consul = await call(s, '127.0.0.2', 'GET', `/v1/kv/k?index=${kvIndex}&wait=30s`);
    expect([consul.status, consul.headers.get('retry-after')]).toEqual([429, '5']);
    expect(await consul.text()).toMatch(/per-client cap/);
    const native = await call(s, '127.0.0.2', 'GET', `/api/v1/services?index=${index}&wait=30s`);
    expect(native.status).toBe(429);
    expect((await native.json()).error.code).toBe('too_many_requests');
    // Another client parks; the writer it waits for is not limited by the parked readers.
    const mine = call(s, '127.0.0.3', 'GET', `/v1/kv/k?index=${kvIndex}&wait=30s`);
    await expect.poll(() => server!.deps.limits.blocking.open).toBe(3);
    await call(s, '127.0.0.4', 'PUT', '/v1/kv/k', 'w');
    expect((await mine).status).toBe(200);
  });

  it('limits how fast one client opens watches', async () => {
    server = await devServer({ limits: { watchRate: 1, watchBurst: 1 } });
    expect((await call(server, '127.0.0.1', 'GET', '/api/v1/watch', undefined, abortable())).status).toBe(200);
    const refused = await call(server, '127.0.0.1', 'GET', '/api/v1/watch');
    expect([refused.status, refused.headers.get('retry-after')]).toEqual([429, '1']);
    expect((await refused.json()).error.message).toMatch(/too many watch streams from this client/);
  });
});

describe('slow connections', () => {
  it('closes a connection that sends its headers one byte every 200 ms', async () => {
    server = await devServer({ httpTimeouts: { headersMs: 500 } });
    const { port } = server.httpAddress;
    const sock = connect(port, '127.0.0.1');
    const closed = new Promise<number>((resolve) => sock.once('close', () => resolve(performance.now())));
    sock.on('error', () => undefined);
    let answer = '';
    sock.on('data', (d) => (answer += d));
    await new Promise((r) => sock.once('connect', r));
    const t0 = performance.now();
    const request = 'GET /api/v1/services HTTP/1.1\r\nHost: x\r\nX-Slow: ' + 'a'.repeat(100);
    let i = 0;
    const drip = setInterval(() => {
      if (!sock.destroyed) sock.write(request[i++ % request.length]!);
    }, 200);
    const at = await closed;
    clearInterval(drip);
    // Closed near the deadline, long before the 100+ bytes could have arrived.
    expect(at - t0).toBeGreaterThanOrEqual(400);
    expect(at - t0).toBeLessThan(2_000);
    expect(answer).toMatch(/^HTTP\/1.1 408 /);
  });

  it('does not cut SSE streams or parked queries that outlive the request timeout', async () => {
    server = await devServer({ httpTimeouts: { headersMs: 200, requestMs: 300 } });
    const s = server;
    const c = new AbortController();
    streams.push(c);
    const res = await call(s, '127.0.0.1', 'GET', '/api/v1/watch', undefined, c.signal);
    const reader = res.body!.getReader();
    await reader.read();
    await call(s, '127.0.0.1', 'PUT', '/v1/kv/k', 'v');
    const kvIndex = Number((await call(s, '127.0.0.1', 'GET', '/v1/kv/k')).headers.get('x-consul-index'));
    const parked = call(s, '127.0.0.1', 'GET', `/v1/kv/k?index=${kvIndex}&wait=30s`);
    await new Promise((r) => setTimeout(r, 900));
    // Both are still open three request timeouts later.
    expect([s.deps.limits.sse.open, s.deps.limits.blocking.open]).toEqual([1, 1]);
    await call(s, '127.0.0.1', 'PUT', '/api/v1/instances', JSON.stringify({ service: 'late', address: '127.0.0.1', port: 1 }));
    await call(s, '127.0.0.1', 'PUT', '/v1/kv/k', 'w');
    let text = '';
    const dec = new TextDecoder();
    while (!text.includes('"service":"late"')) text += dec.decode((await reader.read()).value);
    expect(text).toContain('event: change');
    expect((await parked).status).toBe(200);
  });
});

describe('KV byte quota', () => {
  it('refuses puts and transactions that would pass --kv-max-bytes with 413, keeps what was stored, and counts freed bytes', async () => {
    server = await devServer({ consul: { kvMaxBytes: 100 } });
    const s = server;
    const b64 = (v: string) => Buffer.from(v).toString('base64');
    expect((await call(s, '127.0.0.1', 'PUT', '/v1/kv/a', 'x'.repeat(60))).status).toBe(200);
    const full = await call(s, '127.0.0.1', 'PUT', '/v1/kv/b', 'y'.repeat(60));
    expect(full.status).toBe(413);
    expect(await full.text()).toMatch(/KV store is full: 61 of 100 bytes used, this write adds 61/);
    const txn = await call(s, '127.0.0.1', 'PUT', '/v1/txn', JSON.stringify([{ KV: { Verb: 'set', Key: 'c', Value: b64('z'.repeat(60)) } }]));
    expect(txn.status).toBe(413);
    // Nothing was lost or half written.
    expect(Buffer.from((await (await call(s, '127.0.0.1', 'GET', '/v1/kv/a')).json() as any)[0].Value, 'base64').toString()).toBe('x'.repeat(60));
    expect((await call(s, '127.0.0.1', 'GET', '/v1/kv/b')).status).toBe(404);
    expect((await call(s, '127.0.0.1', 'GET', '/v1/kv/c')).status).toBe(404);
    // Shrinking a value always goes through; deleting frees room.
    expect((await call(s, '127.0.0.1', 'PUT', '/v1/kv/a', 'x')).status).toBe(200);
    expect((await call(s, '127.0.0.1', 'PUT', '/v1/kv/b', 'y'.repeat(60))).status).toBe(200);
    expect((await call(s, '127.0.0.1', 'DELETE', '/v1/kv/b')).status).toBe(200);
    expect((await call(s, '127.0.0.1', 'PUT', '/v1/txn', JSON.stringify([{ KV: { Verb: 'set', Key: 'c', Value: b64('z'.repeat(60)) } }]))).status).toBe(200);
  });
});

describe('sessions per client', () => {
  it('refuses a client’s session past --sessions-per-client with 429, while others create theirs, and a destroyed one frees a place', async () => {
    server = await devServer({ consul: { sessionsPerClient: 2 } });
    const s = server;
    const create = (source: string) => call(s, source, 'PUT', '/v1/session/create', '{}');
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) ids.push(((await (await create('127.0.0.2')).json()) as { ID: string }).ID);
    const refused = await create('127.0.0.2');
    expect(refused.status).toBe(429);
    expect(await refused.text()).toMatch(/127\.0\.0\.2 holds 2 sessions, the per-client cap/);
    expect((await create('127.0.0.3')).status).toBe(200);
    expect((await call(s, '127.0.0.2', 'PUT', `/v1/session/destroy/${ids[0]}`)).status).toBe(200);
    expect((await create('127.0.0.2')).status).toBe(200);
  });
});

function abortable(): AbortSignal {
  const c = new AbortController();
  streams.push(c);
  return c.signal;
}
