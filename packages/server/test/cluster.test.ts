/**
 * Clustered mode end to end: three Beacon servers in this process over a real 3-member etcd on
 * loopback. One view with the same indexes everywhere, heartbeats and reports through any server,
 * one owner per check, and a server cut off from etcd serving its last view as stale.
 * Skipped, with the reason printed, where no `etcd` binary is on PATH.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type RunningServer, type ServerConfig } from '../src/server.js';
import type { EtcdStore } from '../src/store/etcd.js';
import { etcdUnavailableReason, startEtcdCluster, type EtcdCluster } from './etcd-cluster.js';
import { api } from './helpers.js';
import { startTcpProxy, type TcpProxy } from './tcp-proxy.js';

const skipReason = etcdUnavailableReason();
if (skipReason) console.warn(`skipping the clustered-mode tests: ${skipReason}`);

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function until<T>(what: string, f: () => Promise<T> | T, ok: (v: T) => boolean, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (ok(v)) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}: last ${JSON.stringify(v)}`);
    await sleep(25);
  }
}

/** Reads Server-Sent Events frames from a stream until `stop` says enough. */
async function readSse(url: string, headers: Record<string, string>, stop: (frames: { event: string; id?: string; data: any }[]) => boolean, ms = 10_000) {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), ms);
  const frames: { event: string; id?: string; data: any }[] = [];
  try {
    const res = await fetch(url, { headers, signal: ac.signal });
    const decoder = new TextDecoder();
    let buf = '';
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buf += decoder.decode(chunk, { stream: true });
      let cut: number;
      while ((cut = buf.indexOf('\n\n')) >= 0) {
        const raw = buf.slice(0, cut);
        buf = buf.slice(cut + 2);
        const f: { event: string; id?: string; data: any } = { event: 'message', data: undefined };
        for (const line of raw.split('\n')) {
          if (line.startsWith('event: ')) f.event = line.slice(7);
          else if (line.startsWith('id: ')) f.id = line.slice(4);
          else if (line.startsWith('data: ')) f.data = JSON.parse(line.slice(6));
        }
        if (f.data !== undefined) frames.push(f);
      }
      if (stop(frames)) break;
    }
  } finally {
    clearTimeout(timer);
    ac.abort();
  }
  return frames;
}

describe.skipIf(skipReason !== undefined)('clustered mode', () => {
  let etcd: EtcdCluster;
  let backend: Server;
  let backendUrl = '';
  let hits = 0;
  const running: RunningServer[] = [];
  const proxies: TcpProxy[] = [];
  let prefix = '';

  beforeAll(async () => {
    etcd = await startEtcdCluster();
    backend = createServer((_req, res) => {
      hits++;
      res.end('ok');
    });
    await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
    backendUrl = `http://127.0.0.1:${(backend.address() as AddressInfo).port}`;
  }, 60_000);

  afterEach(async () => {
    for (const s of running.splice(0)) await s.close();
    for (const p of proxies.splice(0)) await p.close();
  }, 30_000);

  afterAll(async () => {
    await new Promise((r) => backend?.close(r));
    await etcd?.stop();
  }, 30_000);

  /** Starts `n` servers sharing a fresh key prefix (so tests do not see each other's data). */
  async function cluster(n: number, extra: (i: number) => Partial<ServerConfig> = () => ({})): Promise<RunningServer[]> {
    prefix = `/t-${randomUUID().slice(0, 8)}`;
    const out: RunningServer[] = [];
    for (let i = 0; i < n; i++) {
      const s = await startServer({
        storeUrl: `etcd://${etcd.endpoints.join(',')}${prefix}`,
        httpAddr: '127.0.0.1:0',
        nodeName: `beacon-${i + 1}`,
        flapDamping: false,
        initialCheckStatus: 'passing',
        ...extra(i),
      });
      running.push(s);
      out.push(s);
    }
    // Every server sees every other before the test starts.
    await until('the members', () => out.map((s) => s.cluster!.members().length), (v) => v.every((m) => m === n));
    return out;
  }

  it('serves one view with the same indexes everywhere; heartbeats, reports and resumed watches work through any server', async () => {
    const [a, b, c] = await cluster(3);
    const info = await api(b!, 'GET', '/api/v1/cluster');
    expect(info.body).toMatchObject({ self: 'beacon-2', alive: true, leader: 'beacon-1' });
    expect(info.body.members.map((m: any) => m.node)).toEqual(['beacon-1', 'beacon-2', 'beacon-3']);
    expect(info.body.members[0].httpUrl).toBe(a!.httpUrl);
    // Consul clients see the same cluster.
    const hp = (u: string) => u.replace('http://', '');
    expect((await api(c!, 'GET', '/v1/status/leader')).body).toBe(hp(a!.httpUrl));
    expect((await api(c!, 'GET', '/v1/status/peers')).body).toEqual([a!, b!, c!].map((s) => hp(s.httpUrl)));

    // A write on one server is read on the others at the same index.
    const reg = await api(a!, 'PUT', '/api/v1/instances', { id: 'web-1', service: 'web', address: '127.0.0.1', port: 1, ttlMs: 10_000 });
    expect(reg.status).toBe(200);
    const index: number = reg.body.index;
    for (const s of [b!, c!]) {
      const r = await until('the write on every server', () => api(s, 'GET', '/api/v1/services/web/instances'), (x) => x.body.instances.length === 1);
      expect(r.body.index).toBe(index);
      expect(r.headers.get('x-beacon-index')).toBe(String(index));
    }

    // The lease is etcd's: a heartbeat through another server renews it.
    const hb = await api(c!, 'PUT', '/api/v1/instances/web-1/heartbeat');
    expect(hb.status).toBe(200);
    expect(hb.body.ttlMs).toBe(10_000);

    // A blocking query parked on b with a's index wakes on a write through c, with c's index.
    const parked = api(b!, 'GET', `/api/v1/services/web/instances?index=${index}&wait=10s`);
    await sleep(100);
    const second = await api(c!, 'PUT', '/api/v1/instances', { id: 'web-2', service: 'web', address: '127.0.0.1', port: 2 });
    const woke = await parked;
    expect(woke.body.index).toBe(second.body.index);
    expect(woke.body.instances.map((i: any) => i.id)).toEqual(['web-1', 'web-2']);

    // A watch resumed on another server from the first one's index replays just what followed.
    const frames = await readSse(`${a!.httpUrl}/api/v1/watch?service=web`, { 'last-event-id': String(index) }, (f) => f.length >= 1);
    expect(frames[0]).toMatchObject({ event: 'change', id: String(second.body.index), data: { type: 'upsert', id: 'web-2' } });

    // A TTL check reported only to servers that do not own it stays passing: the reports reach the owner.
    const owner = a!.cluster!.owner('ttl-1');
    const others = [a!, b!, c!].filter((s) => s.cluster!.self !== owner);
    await api(a!, 'PUT', '/api/v1/instances', { id: 'ttl-1', service: 'cron', address: '127.0.0.1', port: 3, checks: [{ id: 'ttl-1-check', kind: 'ttl', ttlMs: 1500 }] });
    for (let k = 0; k < 6; k++) {
      expect((await api(others[k % 2]!, 'PUT', '/api/v1/checks/ttl-1-check/pass')).status).toBe(200);
      await sleep(500);
    }
    expect((await api(b!, 'GET', '/api/v1/instances/ttl-1')).body.checks[0].status).toBe('passing');
    // Unreported, it expires on its owner's timer, once.
    await until('the TTL check to expire', () => api(c!, 'GET', '/api/v1/instances/ttl-1'), (x) => x.body.checks[0].status === 'critical', 5000);
    const events = await api(c!, 'GET', '/api/v1/events?instance=ttl-1&kind=check');
    expect(events.body.events.filter((e: any) => e.to === 'critical')).toHaveLength(1);
  }, 60_000);

  it('lists every server with the work it owns and when it was last seen, natively and to Consul clients', async () => {
    const servers = await cluster(2);
    for (let k = 0; k < 6; k++) {
      await api(servers[0]!, 'PUT', '/api/v1/instances', {
        id: `own-${k}`,
        service: 'own',
        address: '127.0.0.1',
        port: k + 1,
        checks: [{ id: `own-${k}-tcp`, kind: 'tcp', target: `127.0.0.1:${k + 1}`, intervalMs: 60_000 }],
      });
    }
    const expected = (node: string, key: (k: number) => string) => [0, 1, 2, 3, 4, 5].filter((k) => servers[0]!.cluster!.owner(key(k)) === node).length;
    const r = await until('both servers to see the instances', () => api(servers[1]!, 'GET', '/api/v1/members'), (x) => x.body.members.reduce((n: number, m: any) => n + m.instances, 0) === 6);
    const before = Date.now();
    expect(r.body.members.map((m: any) => [m.node, m.httpUrl, m.self, m.leader, m.instances, m.checks])).toEqual(
      servers.map((s, i) => [s.cluster!.self, s.httpUrl, i === 1, i === 0, expected(s.cluster!.self, (k) => `own-${k}`), expected(s.cluster!.self, (k) => `own-${k}-tcp`)]),
    );
    // Renewed every third of the 3 s membership TTL; etcd counts lease time in whole seconds.
    for (const m of r.body.members) expect(before - m.lastSeenAt).toBeLessThan(3_000);
    const consul = await api(servers[0]!, 'GET', '/v1/agent/members');
    expect(consul.body.map((m: any) => [m.Name, m.Addr, m.Status])).toEqual([
      ['beacon-1', '127.0.0.1', 1],
      ['beacon-2', '127.0.0.1', 1],
    ]);
  }, 30_000);

  it('runs each active check on exactly one server, and moves it within an interval when that server leaves', async () => {
    const servers = await cluster(3);
    const checkId = 'probe-1';
    await api(servers[0]!, 'PUT', '/api/v1/instances', {
      id: 'probed-1',
      service: 'probed',
      address: '127.0.0.1',
      port: 1,
      checks: [{ id: checkId, kind: 'http', url: `${backendUrl}/health`, intervalMs: 300, timeoutMs: 200 }],
    });
    const runners = () => servers.filter((s) => running.includes(s) && s.deps.activeChecks!.explain(checkId)).map((s) => s.cluster!.self);
    const first = await until('one server to run the check', runners, (r) => r.length === 1);
    expect(first).toEqual([servers[0]!.cluster!.owner(checkId)]);
    // Steady state: still one, and it keeps probing.
    const before = hits;
    await sleep(1000);
    expect(runners()).toEqual(first);
    expect(hits - before).toBeGreaterThanOrEqual(2);

    // Its server leaves cleanly: another takes the check over.
    const owner = servers.find((s) => s.cluster!.self === first[0])!;
    await owner.close();
    running.splice(running.indexOf(owner), 1);
    const next = await until('another server to run the check', runners, (r) => r.length === 1 && r[0] !== first[0], 5000);
    expect(next).toHaveLength(1);
    const after = hits;
    await until('the new owner to probe', () => hits - after, (n) => n >= 2, 5000);
  }, 60_000);

  it('keeps serving the last view, marked stale, when etcd is unreachable; refuses writes with 503; recovers with a reset', async () => {
    const direct = await cluster(1);
    const etcdStore = direct[0]!.store as EtcdStore;
    // A second server reaches etcd only through proxies that can be cut.
    for (const e of etcd.endpoints) proxies.push(await startTcpProxy(e));
    const cut = await startServer({
      storeUrl: `etcd://${proxies.map((p) => p.address).join(',')}${prefix}`,
      httpAddr: '127.0.0.1:0',
      nodeName: 'beacon-cut',
      initialCheckStatus: 'passing',
    });
    running.push(cut);
    await api(direct[0]!, 'PUT', '/api/v1/instances', { id: 'db-1', service: 'db', address: '127.0.0.1', port: 5432 });
    await until('the cut-off server to see the write', () => api(cut, 'GET', '/api/v1/services/db/instances'), (x) => x.body.instances.length === 1);
    expect((await api(cut, 'GET', '/api/v1/status')).body.stale).toBe(false);
    const storeSize = (text: string) => Number(/^beacon_store_size_bytes (\S+)$/m.exec(text)?.[1]);
    const sizeBefore = storeSize((await api<string>(cut, 'GET', '/metrics')).body);
    expect(sizeBefore).toBeGreaterThan(0);

    const resets = (f: { event: string }[]) => f.filter((x) => x.event === 'reset').length;
    const seen: { event: string; data: any }[] = [];
    const hasDb4 = (f: { event: string; data: any }) =>
      f.event === 'reset' ? f.data.instances.some((i: any) => i.id === 'db-4') : f.data.id === 'db-4' && f.data.type === 'upsert';
    const sse = readSse(`${cut.httpUrl}/api/v1/watch?service=db`, {}, (f) => (seen.splice(0, seen.length, ...f), f.some(hasDb4)), 60_000);
    await until('the first snapshot', () => resets(seen), (n) => n === 1);

    // A short cut: the etcd watch reconnects by itself, but etcd has compacted the revision it
    // resumes from meanwhile. The watcher hears `compacted` and gets a reset, not silence.
    for (const p of proxies) p.cut();
    await api(direct[0]!, 'PUT', '/api/v1/instances', { id: 'db-2', service: 'db', address: '127.0.0.1', port: 5433 });
    // Compacting at the current revision keeps it; one more write puts db-2 below the cut.
    await etcdStore.put('/filler', 'x');
    await etcdStore.compact(await etcdStore.currentRevision());
    await sleep(500);
    for (const p of proxies) p.restore();
    await until('a reset after the compaction', () => resets(seen), (n) => n >= 2, 15_000);
    expect(seen.filter((x) => x.event === 'reset')[1]!.data.instances.map((i: any) => i.id)).toEqual(['db-1', 'db-2']);

    // A long cut: the server says it is stale.
    for (const p of proxies) p.cut();
    await api(direct[0]!, 'PUT', '/api/v1/instances', { id: 'db-4', service: 'db', address: '127.0.0.1', port: 5436 });

    const stale = await until('the status to say stale', () => api(cut, 'GET', '/api/v1/status'), (x) => x.body.stale === true, 15_000);
    expect(stale.body.stale).toBe(true);
    // /metrics answers within etcd's call deadline (1.5 s), with the last store size it saw.
    const scrapeStarted = Date.now();
    const scrape = await api<string>(cut, 'GET', '/metrics');
    expect(scrape.status).toBe(200);
    expect(Date.now() - scrapeStarted).toBeLessThan(3_000);
    expect(scrape.body).toMatch(/^beacon_catalog_stale 1$/m);
    expect(storeSize(scrape.body)).toBe(sizeBefore);
    // Reads: the last view.
    const last = await api(cut, 'GET', '/api/v1/services/db/instances');
    expect(last.status).toBe(200);
    expect(last.body.instances.map((i: any) => i.id)).toEqual(['db-1', 'db-2']);
    // Writes: 503, nothing acknowledged.
    const refused = await api(cut, 'PUT', '/api/v1/instances', { id: 'db-3', service: 'db', address: '127.0.0.1', port: 5434 });
    expect(refused.status).toBe(503);
    expect(refused.body.error.code).toBe('unavailable');

    for (const p of proxies) p.restore();
    await until('the status to recover', () => api(cut, 'GET', '/api/v1/status'), (x) => x.body.stale === false, 20_000);
    const now = await api(cut, 'GET', '/api/v1/services/db/instances');
    expect(now.body.instances.map((i: any) => i.id)).toEqual(['db-1', 'db-2', 'db-4']);
    // After a relist a service's index is the listing's revision: never behind the other servers'.
    expect(now.body.index).toBeGreaterThanOrEqual((await api(direct[0]!, 'GET', '/api/v1/services/db/instances')).body.index);
    // The watcher on the cut-off server hears of what happened meanwhile: as a change when the
    // etcd watch could resume, as a reset when the catalog had to list again.
    expect((await sse).some(hasDb4)).toBe(true);
    // Writes work again. Under a loaded CI one 503 came here once, cause unknown: a client retries
    // a 503, so this does too for a while, and prints what it was told.
    const accepted = await until(
      'a write to be accepted again',
      async () => {
        const res = await api(cut, 'PUT', '/api/v1/instances', { id: 'db-3', service: 'db', address: '127.0.0.1', port: 5434 });
        if (res.status !== 200) console.log(`cluster cut test: a write after recovery got ${res.status} ${JSON.stringify(res.body)}`);
        return res;
      },
      (x) => x.status === 200,
      20_000,
    );
    expect(accepted.status).toBe(200);
  }, 90_000);
});
