import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import type { RunningServer } from '../src/server.js';
import { api, devServer } from './helpers.js';

/** A stand-in build (the real one is exercised by packages/ui/test/browser.test.ts). */
function fakeBuild(): string {
  const dir = mkdtempSync(join(tmpdir(), 'beacon-ui-dist-'));
  mkdirSync(join(dir, 'assets'));
  writeFileSync(join(dir, 'index.html'), '<!doctype html><div id="app"></div><script type="module" src="/ui/assets/app-1a2b.js"></script>');
  writeFileSync(join(dir, 'assets', 'app-1a2b.js'), `console.log(${JSON.stringify('x'.repeat(4000))});`);
  return dir;
}

describe('the web UI plugin', () => {
  let server: RunningServer;
  beforeAll(async () => {
    server = await devServer({ ui: { dir: fakeBuild() } });
  });
  afterAll(() => server.close());

  it('redirects / and /ui to /ui/, which serves index.html with a strict CSP and no caching', async () => {
    for (const path of ['/', '/ui']) {
      const res = await fetch(server.httpUrl + path, { redirect: 'manual' });
      expect([res.status, res.headers.get('location')]).toEqual([302, '/ui/']);
    }
    const res = await fetch(server.httpUrl + '/ui/');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(res.headers.get('cache-control')).toBe('no-cache');
    const csp = res.headers.get('content-security-policy')!;
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).toContain("frame-ancestors 'none'");
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(await res.text()).toContain('<div id="app">');
  });

  it('serves hashed assets immutable, compressed as the client accepts, and answers 304 to a known ETag', async () => {
    const url = server.httpUrl + '/ui/assets/app-1a2b.js';
    const plain = await fetch(url, { headers: { 'accept-encoding': 'identity' } });
    const text = await plain.text();
    expect(plain.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(plain.headers.get('content-encoding')).toBeNull();
    // undici decodes what it asked for; node:http-level bytes are checked through a raw request instead.
    for (const [enc, decode] of [
      ['br', brotliDecompressSync],
      ['gzip', gunzipSync],
    ] as const) {
      const raw = await rawGet(url, enc);
      expect(raw.headers['content-encoding']).toBe(enc);
      expect(raw.body.length).toBeLessThan(text.length / 10);
      expect(decode(raw.body).toString()).toBe(text);
    }
    const etag = plain.headers.get('etag')!;
    expect((await fetch(url, { headers: { 'if-none-match': etag } })).status).toBe(304);
  });

  it('answers unknown files with 404 and never reads outside the build', async () => {
    for (const path of ['/ui/nope.js', '/ui/..%2f..%2fpackage.json', '/ui/assets/..%2F..%2Fetc%2Fpasswd']) {
      const r = await api(server, 'GET', path);
      expect([path, r.status, r.body.error?.code]).toEqual([path, 404, 'not_found']);
    }
  });

  it('says the UI is not built when it is not', async () => {
    const bare = await devServer({ ui: { dir: undefined } });
    try {
      const r = await api(bare, 'GET', '/ui/');
      expect([r.status, r.body.error.code]).toEqual([503, 'unavailable']);
      expect(r.body.error.message).toContain('npm run build');
    } finally {
      await bare.close();
    }
  });
});

describe('writes from browser pages', () => {
  let server: RunningServer;
  beforeAll(async () => {
    server = await devServer({ ui: false });
  });
  afterAll(() => server.close());

  it('refuses a write that a page on another site could send (Origin or Sec-Fetch-Site without X-Beacon-UI), on every API', async () => {
    const cross = { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' };
    const native = await api(server, 'PUT', '/api/v1/instances', { service: 'web', address: '127.0.0.1', port: 1 }, cross);
    expect([native.status, native.body.error.code]).toEqual([403, 'forbidden']);
    const kv = await fetch(server.httpUrl + '/v1/kv/k', { method: 'PUT', body: 'v', headers: { 'content-type': 'text/plain', ...cross } });
    expect([kv.status, await kv.text()]).toEqual([403, expect.stringContaining('x-beacon-ui')]);
    const eureka = await fetch(server.httpUrl + '/eureka/apps/WEB', { method: 'POST', body: '{}', headers: { 'content-type': 'text/plain', origin: 'null' } });
    expect(eureka.status).toBe(403);
    expect((await api(server, 'GET', '/v1/kv/k')).status).toBe(404);
    expect((await api(server, 'GET', '/api/v1/services')).body).toEqual([]);
  });

  it('lets the UI (X-Beacon-UI), reads from pages, and clients without browser headers through', async () => {
    const ui = await api(server, 'PUT', '/api/v1/instances', { service: 'web', address: '127.0.0.1', port: 1 }, { origin: server.httpUrl, 'sec-fetch-site': 'same-origin', 'x-beacon-ui': '1' });
    expect(ui.status).toBe(200);
    expect((await api(server, 'GET', '/api/v1/services', undefined, { origin: 'https://evil.example' })).status).toBe(200);
    const curl = await fetch(server.httpUrl + '/v1/kv/k', { method: 'PUT', body: 'v', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(await curl.text()).toBe('true');
  });
});

describe('GET /api/v1/services/:name/diff and DELETE with a reason', () => {
  let server: RunningServer;
  beforeAll(async () => {
    server = await devServer({ ui: false });
  });
  afterAll(() => server.close());

  it('lists what was added, removed and changed between two indexes', async () => {
    const reg = (port: number, tags: string[] = []) => api(server, 'PUT', '/api/v1/instances', { service: 'web', address: '127.0.0.1', port, tags });
    const a = (await reg(1)).body.instance.id;
    const b = (await reg(2)).body.instance.id;
    const from = (await api(server, 'GET', '/api/v1/services/web/instances')).body.index as number;
    await reg(1, ['v2']);
    const gone = await api(server, 'DELETE', `/api/v1/instances/${b}?reason=${encodeURIComponent('replaced by c')}`);
    expect(gone.status).toBe(200);
    const c = (await reg(3)).body.instance.id;
    const d = await api(server, 'GET', `/api/v1/services/web/diff?from=${from}`);
    expect(d.status).toBe(200);
    expect(d.body.added.map((i: { id: string }) => i.id)).toEqual([c]);
    expect(d.body.removed.map((r: { id: string; before?: unknown }) => [r.id, r.before !== undefined])).toEqual([[b, true]]);
    expect(d.body.changed.map((x: { id: string; fields: string[] }) => [x.id, x.fields])).toEqual([[a, ['tags']]]);
    expect(d.body.changed[0].before.tags).toEqual([]);
    // Up to an index before the later writes, nothing but the first change shows.
    const early = await api(server, 'GET', `/api/v1/services/web/diff?from=${from}&to=${from + 1}`);
    expect([early.body.added.length, early.body.removed.length, early.body.changed.length]).toEqual([0, 0, 1]);
    const events = await api(server, 'GET', `/api/v1/events?instance=${b}&kind=deregistered`);
    expect(events.body.events[0].reason).toBe('deregistered through the API: replaced by c');
  });

  it('refuses bad ranges and history it no longer has', async () => {
    expect((await api(server, 'GET', '/api/v1/services/web/diff?from=5&to=2')).body.error.code).toBe('invalid_argument');
    expect((await api(server, 'GET', '/api/v1/services/Not_A_Name/diff?from=0')).body.error.code).toBe('invalid_argument');
    expect((await api(server, 'GET', '/api/v1/services/web/diff')).body.error.code).toBe('invalid_argument');
    const small = await devServer({ ui: false, historySize: 2 });
    try {
      for (let p = 1; p <= 4; p++) await api(small, 'PUT', '/api/v1/instances', { service: 'web', address: '127.0.0.1', port: p });
      const r = await api(small, 'GET', '/api/v1/services/web/diff?from=1');
      expect([r.status, r.body.error.code]).toEqual([410, 'compacted']);
    } finally {
      await small.close();
    }
  });
});

function rawGet(url: string, encoding: string): Promise<{ headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  return import('node:http').then(
    ({ get }) =>
      new Promise((resolve, reject) => {
        get(url, { headers: { 'accept-encoding': encoding } }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ headers: res.headers, body: Buffer.concat(chunks) }));
        }).on('error', reject);
      }),
  );
}
