import { createServer, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { HttpPool, type UpstreamRequest } from '../src/upstream-http.js';
import { serve } from './helpers.js';

/**
 * A raw TCP instance: each request head it reads (up to the blank line, plus `content-length`
 * body bytes, or a chunked body) is answered by `answer(head, body)`, written in the given pieces
 * with a pause between them, so parsers meet answers split anywhere; a null piece ends the socket.
 */
async function instance(answer: (head: string, body: string) => (string | null)[] | 'close') {
  const heads: string[] = [];
  const server = createServer((s: Socket) => {
    let buf = '';
    s.setEncoding('latin1');
    s.on('data', async (d: string) => {
      buf += d;
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.slice(0, end);
        const len = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0);
        const chunked = /transfer-encoding: chunked/i.test(head);
        let body: string;
        let rest: string;
        if (chunked) {
          const last = buf.indexOf('0\r\n\r\n', end + 4);
          if (last < 0) return;
          body = buf.slice(end + 4, last + 5);
          rest = buf.slice(last + 5);
        } else {
          if (buf.length < end + 4 + len) return;
          body = buf.slice(end + 4, end + 4 + len);
          rest = buf.slice(end + 4 + len);
        }
        buf = rest;
        heads.push(head);
        const pieces = answer(head, body);
        if (pieces === 'close') return void s.destroy();
        for (const p of pieces) {
          if (p === null) s.end();
          else s.write(p, 'latin1');
          await new Promise((r) => setTimeout(r, 2));
        }
      }
    });
  });
  const served = await serve(server);
  return { ...served, heads, connections: () => new Promise<number>((r) => server.getConnections((_, n) => r(n))) };
}

interface Result {
  status: number;
  statusText: string;
  headers: string[];
  body: string;
}

/** One exchange through `pool`, taking the body at once. */
function exchange(pool: HttpPool, req: Partial<UpstreamRequest> = {}): Promise<Result> {
  return new Promise((resolve, reject) => {
    let head: Omit<Result, 'body'> | undefined;
    let body = '';
    const ex = pool.request(
      { method: 'GET', path: '/', headers: ['host', 'svc'], body: null, chunked: false, ...req },
      {
        onHeaders: (status, statusText, headers) => {
          head = { status, statusText, headers };
          ex.resume();
        },
        onData: (c) => ((body += c.toString('latin1')), true),
        onComplete: () => resolve({ ...head!, body }),
        onError: reject,
      },
    );
  });
}

const pools: HttpPool[] = [];
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const p of pools.splice(0)) p.close();
  for (const c of closers.splice(0)) await c();
});
async function setup(answer: Parameters<typeof instance>[0], options: ConstructorParameters<typeof HttpPool>[2] = {}) {
  const inst = await instance(answer);
  closers.push(inst.close);
  const pool = new HttpPool('127.0.0.1', inst.port, options);
  pools.push(pool);
  return { inst, pool };
}

describe('HttpPool', () => {
  it('reads content-length answers split anywhere, drops hop-by-hop headers, and reuses the connection', async () => {
    const { inst, pool } = await setup(() => ['HTTP/1.1 200 O', 'K\r\nContent-Length: 11\r\nConnection: keep-alive\r\nX-A: 1\r', '\n\r\nhello', ' world']);
    for (let i = 0; i < 3; i++) expect(await exchange(pool)).toEqual({ status: 200, statusText: 'OK', headers: ['Content-Length', '11', 'X-A', '1'], body: 'hello world' });
    expect(await inst.connections()).toBe(1);
    expect(inst.heads[0]).toBe('GET / HTTP/1.1\r\nhost: svc');
  });

  it('de-chunks chunked answers with extensions and trailers split anywhere', async () => {
    const { pool } = await setup(() => ['HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhel', 'lo\r', '\n6\r\n world\r\n0\r\nX-Trailer: t\r', '\n\r\n']);
    expect(await exchange(pool)).toMatchObject({ status: 201, headers: [], body: 'hello world' });
    expect(await exchange(pool)).toMatchObject({ body: 'hello world' });
    expect(pool.idleCount).toBe(1);
  });

  it('reads no body for HEAD, 204 and 304, skips a 100 Continue, and reads until close without a length', async () => {
    const { inst, pool } = await setup((head) =>
      head.startsWith('HEAD') ? ['HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n'] : head.startsWith('GET /204') ? ['HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n'] : ['HTTP/1.0 200 OK\r\n\r\nto the ', 'end', null],
    );
    expect(await exchange(pool, { method: 'HEAD' })).toMatchObject({ status: 200, body: '' });
    expect(await exchange(pool, { path: '/204' })).toMatchObject({ status: 204, body: '' });
    expect(pool.idleCount).toBe(1);
    // HTTP/1.0 without a length: the body ends when the instance closes.
    expect(await exchange(pool, { path: '/close' })).toMatchObject({ status: 200, body: 'to the end' });
    expect(pool.idleCount).toBe(0);
    expect(inst.heads.length).toBe(3);
  });

  it('streams a request body, chunked when it has no length', async () => {
    const { inst, pool } = await setup((_head, body) => [`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n${body}`]);
    const r = await exchange(pool, { method: 'POST', body: Readable.from([Buffer.from('ab'), Buffer.from('cde')]), chunked: true });
    expect(r.body).toBe('2\r\nab\r\n3\r\ncde\r\n0\r\n\r\n');
    expect(inst.heads[0]).toMatch(/transfer-encoding: chunked$/);
    const sized = await exchange(pool, { method: 'PUT', headers: ['content-length', '5'], body: Readable.from([Buffer.from('abcde')]) });
    expect(sized.body).toBe('abcde');
  });

  it('fails with a code classifyError knows: refused, closed before answering, malformed or oversized heads', async () => {
    const { pool } = await setup((head) => (head.includes('/reset') ? 'close' : head.includes('/bad') ? ['HTTP/2 200 OK\r\n\r\n'] : ['HTTP/1.1 200 OK\r\nX: ' + 'y'.repeat(2000) + '\r\n\r\n']), { maxHeadBytes: 1024 });
    // A closed server: connection refused.
    const gone = await instance(() => []);
    await gone.close();
    const refusedPool = new HttpPool('127.0.0.1', gone.port);
    pools.push(refusedPool);
    await expect(exchange(refusedPool)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    await expect(exchange(pool, { path: '/reset' })).rejects.toMatchObject({ code: 'ECONNRESET' });
    await expect(exchange(pool, { path: '/bad' })).rejects.toMatchObject({ code: 'HPE_INVALID_CONSTANT' });
    await expect(exchange(pool, { path: '/big' })).rejects.toMatchObject({ code: 'HPE_HEADER_OVERFLOW' });
    expect(pool.idleCount).toBe(0);
  });

  it('gives up an idle connection a second before the Keep-Alive timeout the instance announced', async () => {
    const { inst, pool } = await setup(() => ['HTTP/1.1 200 OK\r\nKeep-Alive: timeout=1\r\nContent-Length: 0\r\n\r\n']);
    await exchange(pool);
    await exchange(pool);
    // timeout=1 leaves no time to reuse: each request took a new connection, closed after it.
    expect(inst.heads.length).toBe(2);
    expect(pool.idleCount).toBe(0);
    await new Promise((r) => setTimeout(r, 20));
    expect(await inst.connections()).toBe(0);
  });

  it('an abort after the exchange finished leaves the reused connection alone', async () => {
    const { inst, pool } = await setup(() => ['HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok']);
    let first: ReturnType<HttpPool['request']> | undefined;
    await new Promise<void>((resolve, reject) => {
      first = pool.request({ method: 'GET', path: '/', headers: [], body: null, chunked: false }, { onHeaders: () => first!.resume(), onData: () => true, onComplete: resolve, onError: reject });
    });
    first!.abort(new Error('late'));
    expect(await exchange(pool)).toMatchObject({ body: 'ok' });
    expect(await inst.connections()).toBe(1);
  });
});
