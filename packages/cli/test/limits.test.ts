import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnServer, type RunningProcess } from './helpers.js';

let server: RunningProcess;
beforeAll(async () => {
  server = await spawnServer(['--dev', '--no-dns', '--limit-write-rate', '1', '--limit-write-burst', '2', '--limit-watches-per-client', '1', '--http-headers-timeout', '300ms']);
});
afterAll(async () => {
  await server?.stop();
});

describe('beacon server request-limit flags', () => {
  it('limit writes and streams per client as given', async () => {
    const put = () => fetch(`${server.url}/v1/kv/flag`, { method: 'PUT', body: 'x' });
    expect([(await put()).status, (await put()).status]).toEqual([200, 200]);
    const refused = await put();
    expect([refused.status, refused.headers.get('retry-after')]).toEqual([429, '1']);

    const first = new AbortController();
    expect((await fetch(`${server.url}/api/v1/watch`, { signal: first.signal })).status).toBe(200);
    const second = await fetch(`${server.url}/api/v1/watch`);
    expect(second.status).toBe(429);
    first.abort();
  });

  it('close a connection whose headers take longer than --http-headers-timeout', async () => {
    const port = Number(new URL(server.url).port);
    const sock = connect(port, '127.0.0.1');
    sock.on('error', () => undefined);
    let answer = '';
    sock.on('data', (d) => (answer += d));
    const t0 = performance.now();
    sock.write('GET /api/v1/status HTTP/1.1\r\nHost: x\r\n');
    await new Promise((r) => sock.once('close', r));
    expect(performance.now() - t0).toBeLessThan(2_000);
    expect(answer).toMatch(/^HTTP\/1.1 408 /);
  });
});
