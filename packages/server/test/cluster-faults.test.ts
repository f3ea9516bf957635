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
