/**
 * Clustered mode under faults, with real processes: three `beacon server --store etcd://…`
 * processes (the built CLI) over a 3-member etcd on loopback, clients registering and
 * heartbeating through all of them. A Beacon server is SIGKILLed, then the etcd leader; no
 * acknowledged registration may be lost and clients must not see failures. The pauses are
 * printed (no timing assertions on a shared machine). Needs `npm run build` (the tests spawn
 * packages/cli/dist) and an `etcd` binary; skipped with the reason printed otherwise.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BeaconHttp } from '@beacon/client';
import { spawnServer } from '../../cli/test/helpers.js';
import { etcdUnavailableReason, startEtcdCluster, type EtcdCluster } from './etcd-cluster.js';

const built = existsSync(fileURLToPath(new URL('../../cli/dist/main.js', import.meta.url)));
const skipReason = etcdUnavailableReason() ?? (built ? undefined : 'the CLI is not built (run `npm run build`)');
if (skipReason) console.warn(`skipping the clustered-mode fault tests: ${skipReason}`);

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

type Proc = Awaited<ReturnType<typeof spawnServer>>;

interface LoadResult {
  acked: string[];
  failures: string[];
  /** Slowest single request (registration or heartbeat), and when (ms after the start) it began. */
  worstMs: number;
  worstAt: number;
  requests: number;
}

/**
 * `workers` clients, each with all servers (in a rotated order, to spread the load), registering
 * new instances and heartbeating the previous one until `stop` resolves.
 */
async function load(urls: string[], workers: number, tag: string, stop: Promise<void>): Promise<LoadResult> {
  const out: LoadResult = { acked: [], failures: [], worstMs: 0, worstAt: 0, requests: 0 };
  let done = false;
  void stop.then(() => (done = true));
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: workers }, async (_, w) => {
      const http = new BeaconHttp({ servers: urls.map((_, k) => urls[(k + w) % urls.length]!), timeoutMs: 5000 });
      /** One request, timed on its own: the slowest one is the pause clients saw. */
      const timed = async (f: () => Promise<unknown>) => {
        const started = performance.now();
        try {
          await f();
        } finally {
          out.requests++;
          const ms = performance.now() - started;
          if (ms > out.worstMs) {
            out.worstMs = ms;
            out.worstAt = started - t0;
          }
        }
      };
      for (let n = 0; !done; n++) {
        const id = `${tag}-${w}-${n}`;
        try {
          await timed(() => http.request('PUT', '/api/v1/instances', { body: { id, service: tag, address: '127.0.0.1', port: 10_000 + n, ttlMs: 60_000 } }));
          out.acked.push(id);
          if (n > 0) await timed(() => http.request('PUT', `/api/v1/instances/${tag}-${w}-${n - 1}/heartbeat`));
        } catch (err) {
          out.failures.push(`${id}: ${(err as Error).message}`);
        }
      }
    }),
  );
  return out;
}

async function registered(url: string, service: string): Promise<Set<string>> {
  const res = await fetch(`${url}/api/v1/services/${service}/instances`);
  const body = (await res.json()) as { instances: { id: string }[] };
  return new Set(body.instances.map((i) => i.id));
}

describe.skipIf(skipReason !== undefined)('clustered mode under faults', () => {
  let etcd: EtcdCluster;
  const procs: Proc[] = [];

  beforeAll(async () => {
    etcd = await startEtcdCluster();
    const store = `etcd://${etcd.endpoints.join(',')}/faults`;
    procs.push(...(await Promise.all([1, 2, 3].map((i) => spawnServer(['--store', store, '--node', `beacon-${i}`])))));
  }, 90_000);

  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop('SIGKILL')));
    await etcd?.stop();
  }, 30_000);

  it('loses no acknowledged registration when a Beacon server is SIGKILLed under load; clients fail over', async () => {
    const urls = procs.map((p) => p.url);
    let release!: () => void;
    const stop = new Promise<void>((r) => (release = r));
    const running = load(urls, 4, 'svrkill', stop);
    await sleep(1500);
    await procs[1]!.stop('SIGKILL');
    await sleep(2500);
    release();
    const r = await running;
    console.info(
      `Beacon server SIGKILL: ${r.requests} requests, ${r.acked.length} registrations acknowledged, ${r.failures.length} failed; ` +
        `slowest request ${Math.round(r.worstMs)} ms, starting ${Math.round(r.worstAt)} ms into the run (server killed at ~1500 ms)`,
    );
    expect(r.failures).toEqual([]);
    expect(r.acked.length).toBeGreaterThan(20);
    for (const survivor of [procs[0]!, procs[2]!]) {
      const have = await registered(survivor.url, 'svrkill');
      expect(r.acked.filter((id) => !have.has(id))).toEqual([]);
    }
  }, 60_000);

  it("keeps a leased instance alive by heartbeats through a server that does not own it; after its owner's SIGKILL, a heartbeat elsewhere takes it over and a silent one goes within TTL bucket + margin", async () => {
    const store = `etcd://${etcd.endpoints.join(',')}/faults`;
    const owner = await spawnServer(['--store', store, '--node', 'beacon-owner']);
    try {
      // TTL 5 s: the owner's shared lease for the 5 s bucket lives 5 + 3 s from its last renewal.
      const ttlMs = 5000;
      const ownerHttp = new BeaconHttp({ servers: [owner.url] });
      for (const id of ['kept', 'orphan']) {
        await ownerHttp.request('PUT', '/api/v1/instances', { body: { id, service: 'owned', address: '127.0.0.1', port: 1, ttlMs } });
      }
      const others = new BeaconHttp({ servers: [procs[0]!.url, procs[2]!.url] });
      const beat = () => others.request('PUT', '/api/v1/instances/kept/heartbeat');
      // `kept` heartbeats only through other servers, for longer than the TTL (relayed to its
      // owner); `orphan` through its owner, where a heartbeat is memory only.
      for (let k = 0; k < 7; k++) {
        await beat();
        await ownerHttp.request('PUT', '/api/v1/instances/orphan/heartbeat');
        await sleep(1000);
      }
      expect(await registered(procs[0]!.url, 'owned')).toEqual(new Set(['kept', 'orphan']));

      await owner.stop('SIGKILL');
      const killedAt = performance.now();
      let orphanGoneAt = 0;
      for (let k = 0; performance.now() - killedAt < 12_000; k++) {
        if (k % 4 === 0) await beat();
        const have = await registered(procs[2]!.url, 'owned');
        expect(have.has('kept')).toBe(true);
        if (!have.has('orphan') && !orphanGoneAt) orphanGoneAt = performance.now() - killedAt;
        await sleep(250);
      }
      console.info(`owner SIGKILL: the silent instance went ${Math.round(orphanGoneAt)} ms after, the heartbeated one was taken over`);
      // Bound: bucket (5 s) + margin (3 s) after the owner's last renewal, plus etcd's expiry sweep
      // (0.5 s), the watch and this loop's step.
      // It outlived its owner by the shared lease, not by its own deadline (that died with the owner).
      expect(orphanGoneAt).toBeGreaterThan(4000);
      expect(orphanGoneAt).toBeLessThan(8000 + 2500);
      // The taken-over instance now lives by a live server's lease: still there past the old lease's end.
      expect((await registered(procs[0]!.url, 'owned')).has('kept')).toBe(true);
    } finally {
      await owner.stop('SIGKILL');
    }
  }, 60_000);

  it('keeps writing when the etcd leader is SIGKILLed, and catches up when it returns', async () => {
    const urls = [procs[0]!.url, procs[2]!.url];
    let release!: () => void;
    const stop = new Promise<void>((r) => (release = r));
    const running = load(urls, 4, 'etcdkill', stop);
    await sleep(1000);
    const leader = await etcd.leader();
    await etcd.kill(leader);
    await sleep(4000);
    release();
    const r = await running;
    console.info(
      `etcd leader SIGKILL: ${r.requests} requests, ${r.acked.length} registrations acknowledged, ${r.failures.length} failed; ` +
        `longest pause (slowest request) ${Math.round(r.worstMs)} ms, starting ${Math.round(r.worstAt)} ms into the run (leader killed at ~1000 ms)`,
    );
    expect(r.failures).toEqual([]);
    for (const url of urls) {
      const have = await registered(url, 'etcdkill');
      expect(r.acked.filter((id) => !have.has(id))).toEqual([]);
    }
    await etcd.restart(leader);
    // Writes through the cluster keep being acknowledged with the member back.
    const http = new BeaconHttp({ servers: urls });
    expect((await http.request('PUT', '/api/v1/instances', { body: { id: 'after-restart', service: 'etcdkill', address: '127.0.0.1', port: 1 } })).status).toBe(200);
  }, 60_000);
});
