/**
 * The proxy's own HTTP/1.1 server side, over raw sockets: pipelining answered in order, HTTP/1.0
 * and Connection semantics, 400 and close for malformed or smuggling-shaped requests, Expect:
 * 100-continue with a chunked body streamed through, an answer without a length re-chunked, and
 * an idempotent request's body resent on a retry after the first instance reset.
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backend, proxyFor, register, spawnServer, until, type RunningProcess } from './helpers.js';

let beacon: RunningProcess;
beforeAll(async () => {
  beacon = await spawnServer(['--dev']);
});
afterAll(async () => {
  await beacon?.stop();
});

/** Writes `parts` (with `gapMs` between them), and collects what comes back until `done(text)` or the proxy closes. */
function exchange(port: number, parts: string[], done: (text: string) => boolean = () => false, gapMs = 0, halfClose = false): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port });
    let text = '';
    let settled = false;
    const finish = (closed: boolean) => {
      if (settled) return;
      settled = true;
      s.destroy();
      resolve({ text, closed });
    };
    s.on('data', (d) => {
      text += d.toString('latin1');
      if (done(text)) finish(false);
    });
    s.on('close', () => finish(true));
    s.on('error', reject);
    s.once('connect', async () => {
      for (const p of parts) {
        s.write(p);
        if (gapMs) await new Promise((r) => setTimeout(r, gapMs));
      }
      if (halfClose) s.end();
    });
  });
}

/** An instance that echoes method, path and body; without a length when the path says so (chunked to an HTTP/1.1 client). */
const echo = (name: string) =>
  backend(name, (req, res) => {
    let body = '';
    req.setEncoding('latin1').on('data', (d) => (body += d));
    req.on('end', () => {
      const out = JSON.stringify({ by: name, method: req.method, path: req.url, body });
      if (req.url === '/stream') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write(out.slice(0, 10));
        setTimeout(() => res.end(out.slice(10)), 5);
      } else res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(out) }).end(out);
    });
  });

const count = (text: string, what: string) => text.split(what).length - 1;

/** An echo instance of `service` and a proxy (with an admin port) that routes to it, once it answers. */
async function echoBehindProxy(service: string) {
  const a = await echo('a');
  await register(beacon, service, a.port);
  const p = await proxyFor(beacon, { admin: '127.0.0.1:0', listeners: [{ listen: '127.0.0.1:0', service }] });
  const port = p.proxy.listeners[0]!.port;
  await until(() => exchange(port, ['GET /ready HTTP/1.1\r\nHost: x\r\n\r\n'], (t) => t.includes('"by"')), (r) => r.text.startsWith('HTTP/1.1 200'));
  return { port, adminUrl: p.proxy.adminUrl!, close: () => p.close().then(() => a.close()) };
}

describe('beacon proxy, the client side of L7', () => {
  it('answers pipelined requests in order, keeps HTTP/1.0 and Connection: close semantics', async () => {
    const { port, close } = await echoBehindProxy('pipes');
    try {
      // Three requests in one write, the middle one with a body: three answers, in order, connection kept.
      const three = await exchange(
        port,
        ['GET /1 HTTP/1.1\r\nHost: x\r\n\r\nPOST /2 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET /3 HTTP/1.1\r\nHost: x\r\n\r\n'],
        (t) => count(t, '"by"') === 3,
      );
      expect(three.closed).toBe(false);
      expect([...three.text.matchAll(/"path":"(\/\d)"/g)].map((m) => m[1])).toEqual(['/1', '/2', '/3']);
      expect(three.text).toContain('"method":"POST","path":"/2","body":"hello"');

      // HTTP/1.0 without keep-alive: the answer says close, and the proxy closes.
      const old = await exchange(port, ['GET /old HTTP/1.0\r\n\r\n']);
      expect(old.closed).toBe(true);
      expect(old.text).toMatch(/^HTTP\/1\.1 200 OK\r\n[^]*connection: close\r\n/i);
      // HTTP/1.0 with keep-alive: kept, and said so.
      const kept = await exchange(port, ['GET /ka HTTP/1.0\r\nConnection: keep-alive\r\n\r\n'], (t) => t.includes('"by"'));
      expect(kept.closed).toBe(false);
      expect(kept.text).toMatch(/connection: keep-alive\r\n/i);
      // Connection: close on 1.1: answered, then closed (a request after it is not read).
      const closing = await exchange(port, ['GET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET /never HTTP/1.1\r\nHost: x\r\n\r\n']);
      expect(closing.closed).toBe(true);
      expect(count(closing.text, '"by"')).toBe(1);
      expect(closing.text).not.toContain('/never');
      // A client that shuts its side after two requests still gets both answers, then the close.
      const halfClosed = await exchange(port, ['GET /h1 HTTP/1.1\r\nHost: x\r\n\r\nGET /h2 HTTP/1.1\r\nHost: x\r\n\r\n'], () => false, 0, true);
      expect(halfClosed.closed).toBe(true);
      expect([...halfClosed.text.matchAll(/"path":"(\/h\d)"/g)].map((m) => m[1])).toEqual(['/h1', '/h2']);
    } finally {
      await close();
    }
  });

  it('refuses malformed and smuggling-shaped requests with 400 and closes, counting them', async () => {
    const { port, adminUrl, close } = await echoBehindProxy('strict');
    try {
      for (const [req, message] of [
        ['POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', /both Content-Length and Transfer-Encoding/],
        ['GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n folded\r\n\r\n', /obsolete line folding/],
        ['GET / HTTP/1.1\r\nHost: x\r\nX-Big: ' + 'a'.repeat(70_000) + '\r\n\r\n', /longer than 65536 bytes/],
        // The message quotes the client's bytes, non-ASCII ones included: the length still counts the body's bytes.
        ['GET /caf\u00e9 HTTP/1.1\r\nHost: x\r\n\r\n', /the request line is malformed: "GET \/caf/],
      ] as const) {
        const r = await exchange(port, [req]);
        expect(r.closed).toBe(true);
        expect(r.text).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
        const raw = r.text.slice(r.text.indexOf('\r\n\r\n') + 4);
        // `text` is latin1, one character a byte.
        expect(Number(/content-length: (\d+)/.exec(r.text)?.[1])).toBe(raw.length);
        const body = JSON.parse(Buffer.from(raw, 'latin1').toString('utf8'));
        expect(body.error.code).toBe('invalid_argument');
        expect(body.error.message).toMatch(message);
      }
      const metrics = await (await fetch(`${adminUrl}/metrics`)).text();
      expect(metrics).toContain('beacon_proxy_local_replies_total{listener="127.0.0.1:0",route="",reason="bad_request"} 4');
    } finally {
      await close();
    }
  });

  it('answers Expect: 100-continue, streams a chunked body through, and re-chunks an answer without a length', async () => {
    const { port, close } = await echoBehindProxy('uploads');
    try {
      const r = await exchange(
        port,
        ['POST /stream HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n', '4\r\nabcd\r\n', '3;x=y\r\nefg\r\n0\r\n\r\n'],
        (t) => t.endsWith('0\r\n\r\n'),
        20,
      );
      expect(r.text).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 OK\r\n/);
      expect(r.text).toMatch(/transfer-encoding: chunked\r\n/i);
      const chunked = r.text.slice(r.text.lastIndexOf('\r\n\r\n', r.text.indexOf('{')) + 4);
      const body = chunked.replace(/(?:^|\r\n)[0-9a-f]+\r\n/g, '');
      expect(JSON.parse(body)).toMatchObject({ method: 'POST', body: 'abcdefg' });
    } finally {
      await close();
    }
  });

  it('resends a buffered body when an idempotent request is retried after a reset, and never a POST', async () => {
    let resets = 0;
    // The first instance resets every connection after reading the request, once it has its body.
    const flaky = await backend('flaky', (req) => {
      req.resume();
      req.on('end', () => {
        resets++;
        req.socket.destroy();
      });
    });
    const well = await echo('well');
    await register(beacon, 'files', flaky.port);
    await register(beacon, 'files', well.port);
    const p = await proxyFor(beacon, { listeners: [{ listen: '127.0.0.1:0', service: 'files', policy: { balancer: 'round-robin', outlier: false, breaker: false, retries: { max: 2, baseMs: 1, maxMs: 5, budgetRatio: 1 } } }] });
    const port = p.proxy.listeners[0]!.port;
    const body = 'x'.repeat(40_000);
    try {
      await until(async () => p.proxy.snapshot().listeners[0]!.routes[0]!.subsets[0]!.instances.length, (n) => n === 2);
      const answers: string[] = [];
      for (let i = 0; i < 4; i++) {
        const r = await exchange(port, [`PUT /f${i} HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n${body}`], (t) => t.includes('"body"') && t.endsWith('}'));
        answers.push(r.text);
      }
      // Every PUT reached `well` with its whole body, though half went to `flaky` first.
      for (const t of answers) expect(JSON.parse(t.slice(t.indexOf('{')))).toMatchObject({ by: 'well', method: 'PUT', body });
      expect(resets).toBeGreaterThanOrEqual(1);
      // A POST is not idempotent: one that reaches `flaky` is answered 502, not sent twice.
      const before = resets;
      const posts: number[] = [];
      for (let i = 0; i < 4; i++) {
        const r = await exchange(port, [`POST /p${i} HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello`], (t) => t.endsWith('}') && t.includes('\r\n\r\n'));
        posts.push(Number(r.text.slice(9, 12)));
      }
      expect(posts.filter((s) => s === 502).length).toBe(resets - before);
      expect(posts.filter((s) => s === 200).length + resets - before).toBe(4);
    } finally {
      await p.close();
      await flaky.close();
      await well.close();
    }
  });
});
