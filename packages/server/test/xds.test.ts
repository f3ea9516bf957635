import * as grpc from '@grpc/grpc-js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../src/server.js';
import type { XdsClientInfo } from '../src/xds/index.js';
import { api, devServer, until } from './helpers.js';
import { etcdUnavailableReason, startEtcdCluster, type EtcdCluster } from './etcd-cluster.js';
import { backend, nacks, register, registerXds, who, xdsStub, type Backend } from './xds-helpers.js';

// Every test drives the real @grpc/grpc-js-xds client against a real Beacon server and real
// gRPC backends on loopback; each checks at the end that the client NACKed nothing.

const cleanup: (() => unknown)[] = [];
const servers: RunningServer[] = [];
afterEach(async () => {
  for (const s of servers) expect(await nacks(s), 'NACKs received').toBe(0);
  servers.length = 0;
  for (const f of cleanup.splice(0).reverse()) await f();
});

async function xdsServer(extra: Parameters<typeof devServer>[0] = {}): Promise<RunningServer> {
  registerXds();
  const s = await devServer({ xds: { addr: '127.0.0.1:0' }, initialCheckStatus: 'passing', ...extra });
  servers.push(s);
  cleanup.push(() => s.close());
  return s;
}

async function backends(...names: string[]): Promise<Backend[]> {
  const out = await Promise.all(names.map((n) => backend(n)));
  for (const b of out) cleanup.push(() => b.stop());
  return out;
}

function stubFor(server: RunningServer, target: string) {
  const stub = xdsStub(target, server.xdsAddress!.port);
  cleanup.push(() => stub.close());
  return stub;
}

async function tally(stub: ReturnType<typeof xdsStub>, n: number): Promise<Record<string, number>> {
  const seen: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const name = await who(stub);
    seen[name] = (seen[name] ?? 0) + 1;
  }
  return seen;
}

async function clients(server: RunningServer): Promise<XdsClientInfo[]> {
  return (await api<{ clients: XdsClientInfo[] }>(server, 'GET', '/api/v1/xds/clients')).body.clients;
}

/** The version the client last ACKed for `type`, on its one stream to `server`. */
async function acked(server: RunningServer, type: XdsClientInfo['types'][number]['type']): Promise<string | undefined> {
  const c = await clients(server);
  return c[0]?.types.find((t) => t.type === type)?.ack?.version;
}

describe('xDS with the real @grpc/grpc-js-xds client', () => {
  it('spreads calls over the ready instances by weight (RING_HASH), never to one not ready', async () => {
    const server = await xdsServer();
    const [a, b, down] = await backends('a', 'b', 'down');
    const meta = { 'xds.lb-policy': 'ring_hash' };
    await register(server, { id: 'a', service: 'echo', address: '127.0.0.1', port: a!.port, weight: 1, meta });
    await register(server, { id: 'b', service: 'echo', address: '127.0.0.1', port: b!.port, weight: 3, meta });
    await register(server, { id: 'down', service: 'echo', address: '127.0.0.1', port: down!.port, weight: 3, meta });
    await api(server, 'PUT', '/api/v1/instances/down/maintenance', { reason: 'test' });
    const stub = stubFor(server, 'echo');
    // The client may connect before the last change is pushed (5 ms later): count once it has it.
    await until(() => tally(stub, 20), (s) => s.down === undefined && s.a !== undefined && s.b !== undefined);
    const seen = await tally(stub, 400);
    console.log('weights 1:3, 400 calls:', seen);
    expect(seen.down).toBeUndefined();
    // 1:3 expected; a wide band, as the ring hashes a random number per call.
    expect(seen.b! / 400).toBeGreaterThan(0.6);
    expect(seen.b! / 400).toBeLessThan(0.9);
  });

  it('splits calls across zones by locality weight (ROUND_ROBIN)', async () => {
    const server = await xdsServer();
    const [a1, b1, b2] = await backends('a1', 'b1', 'b2');
    await register(server, { id: 'a1', service: 'echo', address: '127.0.0.1', port: a1!.port, zone: 'zone-a', weight: 2 });
    await register(server, { id: 'b1', service: 'echo', address: '127.0.0.1', port: b1!.port, zone: 'zone-b', weight: 3 });
    await register(server, { id: 'b2', service: 'echo', address: '127.0.0.1', port: b2!.port, zone: 'zone-b', weight: 3 });
    const stub = stubFor(server, 'echo');
    await until(() => tally(stub, 20), (s) => Object.keys(s).length === 3);
    const seen = await tally(stub, 400);
    console.log('zone-a weight 2, zone-b weight 6, 400 calls:', seen);
    const zoneB = ((seen.b1 ?? 0) + (seen.b2 ?? 0)) / 400;
    expect(zoneB).toBeGreaterThan(0.6);
    expect(zoneB).toBeLessThan(0.9);
    // Round robin inside a locality: both of zone-b's instances get calls.
    expect(seen.b1).toBeGreaterThan(0);
    expect(seen.b2).toBeGreaterThan(0);
  });

  it('an instance that turns not ready, or is deregistered, gets no call once the change reaches the client; a new one gets calls', async () => {
    const server = await xdsServer();
    const [a, b, c] = await backends('a', 'b', 'c');
    await register(server, { id: 'a', service: 'echo', address: '127.0.0.1', port: a!.port });
    await register(server, { id: 'b', service: 'echo', address: '127.0.0.1', port: b!.port });
    const stub = stubFor(server, 'echo');
    expect(Object.keys(await until(() => tally(stub, 20), (s) => Object.keys(s).length === 2)).sort()).toEqual(['a', 'b']);

    /** Makes the change, waits for the client's ACK of new endpoints, and says how long that took. */
    const change = async (what: string, f: () => Promise<unknown>) => {
      const before = await acked(server, 'endpoint');
      const t0 = performance.now();
      await f();
      await until(() => acked(server, 'endpoint'), (v) => v !== before);
      const ms = performance.now() - t0;
      console.log(`${what}: endpoints ACKed by the client ${ms.toFixed(1)} ms after the API write returned (loaded machine)`);
    };
    await change('b not ready (maintenance)', () => api(server, 'PUT', '/api/v1/instances/b/maintenance', { reason: 'test' }));
    expect(await tally(stub, 20)).toEqual({ a: 20 });
    await change('b back', () => api(server, 'PUT', '/api/v1/instances/b/maintenance', { enable: false }));
    await until(() => tally(stub, 10), (s) => (s.b ?? 0) > 0);
    await change('b deregistered', () => api(server, 'DELETE', '/api/v1/instances/b'));
    expect(await tally(stub, 20)).toEqual({ a: 20 });

    // A new instance: time from the API write to its first call, calls made back to back.
    const t0 = performance.now();
    await register(server, { id: 'c', service: 'echo', address: '127.0.0.1', port: c!.port });
    let firstCall = Infinity;
    for (let i = 0; i < 5_000 && firstCall === Infinity; i++) if ((await who(stub)) === 'c') firstCall = performance.now() - t0;
    console.log(`new instance c: first call ${firstCall.toFixed(1)} ms after the API write returned (loaded machine)`);
    expect(c!.calls).toBeGreaterThan(0);
  });

  it('a service that empties keeps its Cluster: calls resume when an instance comes back', async () => {
    const server = await xdsServer();
    const [a, b] = await backends('a', 'b');
    await register(server, { id: 'a', service: 'echo', address: '127.0.0.1', port: a!.port });
    const stub = stubFor(server, 'echo');
    expect(await who(stub)).toBe('a');
    const [cluster, endpoints] = [await acked(server, 'cluster'), await acked(server, 'endpoint')];
    await api(server, 'DELETE', '/api/v1/instances/a');
    await until(() => acked(server, 'endpoint'), (v) => v !== endpoints);
    expect(await acked(server, 'cluster')).toBe(cluster);
    // No endpoints: grpc-js fails calls at once (UNAVAILABLE) rather than queueing them.
    await expect(who(stub)).rejects.toThrow(/UNAVAILABLE/);
    const empty = await acked(server, 'endpoint');
    await register(server, { id: 'b', service: 'echo', address: '127.0.0.1', port: b!.port });
    await until(() => acked(server, 'endpoint'), (v) => v !== empty);
    expect(await who(stub)).toBe('b');
  });

  it('a restart of the ADS server loses no call', async () => {
    registerXds();
    const dir = mkdtempSync(join(tmpdir(), 'beacon-xds-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const config = { dataDir: dir, httpAddr: '127.0.0.1:0', nodeName: 'test-node', initialCheckStatus: 'passing' as const };
    let server = await startServer({ ...config, xds: { addr: '127.0.0.1:0' } });
    const xdsAddr = `127.0.0.1:${server.xdsAddress!.port}`;
    cleanup.push(() => server.close());
    const [a, b] = await backends('a', 'b');
    await register(server, { id: 'a', service: 'echo', address: '127.0.0.1', port: a!.port });
    await register(server, { id: 'b', service: 'echo', address: '127.0.0.1', port: b!.port });
    const stub = stubFor(server, 'echo');
    await who(stub);

    let calls = 0;
    let failures = 0;
    let running = true;
    const loop = (async () => {
      while (running) {
        try {
          await who(stub, 2_000);
          calls++;
        } catch {
          failures++;
        }
      }
    })();
    await until(async () => calls, (n) => n > 50);
    expect(await nacks(server), 'NACKs received before the restart').toBe(0);
    await server.close();
    const down = calls;
    await until(async () => calls, (n) => n > down + 50);
    server = await startServer({ ...config, httpAddr: server.httpUrl.replace('http://', ''), xds: { addr: xdsAddr } });
    servers.push(server);
    // The client comes back on its own and takes changes again.
    await until(() => clients(server), (c) => c.length === 1 && c[0]!.types.some((t) => t.type === 'endpoint' && t.ack), 15_000);
    const before = await acked(server, 'endpoint');
    await api(server, 'DELETE', '/api/v1/instances/b');
    await until(() => acked(server, 'endpoint'), (v) => v !== before);
    const [bBefore, callsBefore] = [b!.calls, calls];
    await until(async () => calls, (n) => n > callsBefore + 50);
    running = false;
    await loop;
    console.log(`restart: ${calls} calls, ${failures} failed; ${down} before the server stopped`);
    expect(failures).toBe(0);
    expect(calls).toBeGreaterThan(down + 50);
    // The change made on the restarted server reached the client: b gets no more calls.
    expect(b!.calls).toBe(bBefore);
  });
});

/** Opens an ADS stream that sends `frames` as raw message bytes, and resolves with how it ended. */
function rawAds(port: number, frames: Buffer[]): Promise<grpc.StatusObject> {
  const raw = (b: Buffer) => b;
  const Client = grpc.makeGenericClientConstructor(
    {
      ads: {
        path: '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources',
        requestStream: true,
        responseStream: true,
        requestSerialize: raw,
        requestDeserialize: raw,
        responseSerialize: raw,
        responseDeserialize: raw,
      },
    },
    'Ads',
  );
  const client = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const call = (client as unknown as { ads(): grpc.ClientDuplexStream<Buffer, Buffer> }).ads();
  return new Promise((resolve) => {
    call.on('data', () => {});
    call.on('error', () => {});
    call.on('status', (s: grpc.StatusObject) => {
      client.close();
      resolve(s);
    });
    for (const f of frames) call.write(f);
    call.end();
  });
}

describe('xDS input safety', () => {
  it('a malformed or oversized request ends that stream only; the server keeps serving', async () => {
    const server = await xdsServer();
    const [a] = await backends('a');
    await register(server, { id: 'a', service: 'echo', address: '127.0.0.1', port: a!.port });
    const port = server.xdsAddress!.port;
    const garbage = await rawAds(port, [Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f])]);
    expect(garbage.code).not.toBe(grpc.status.OK);
    const huge = await rawAds(port, [Buffer.alloc(2 << 20, 0x0a)]);
    expect(huge.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    // An unknown type (field 4, type_url) is ignored, not answered.
    const url = Buffer.from('type.googleapis.com/nothing.Such');
    const unknown = await rawAds(port, [Buffer.concat([Buffer.from([0x22, url.length]), url])]);
    expect(unknown.code).toBe(grpc.status.OK);
    expect(await who(stubFor(server, 'echo'))).toBe('a');
  });
});

describe('xDS listener settings', () => {
  it('refuses a non-loopback or malformed --xds-addr before opening anything', async () => {
    await expect(devServer({ xds: { addr: '0.0.0.0:0' } })).rejects.toThrow(/refusing to listen for xDS on 0\.0\.0\.0:0/);
    await expect(devServer({ xds: { addr: 'localhost' } })).rejects.toThrow(/invalid xDS address "localhost"/);
  });

  it('says which listener could not bind', async () => {
    const first = await xdsServer();
    await expect(devServer({ xds: { addr: `127.0.0.1:${first.xdsAddress!.port}` } })).rejects.toThrow(/cannot listen for xDS on 127\.0\.0\.1:\d+/);
  });
});

const etcdSkip = etcdUnavailableReason();
if (etcdSkip) console.warn(`skipping the clustered xDS test: ${etcdSkip}`);

describe.skipIf(etcdSkip !== undefined)('xDS in clustered mode', () => {
  let etcd: EtcdCluster;
  beforeAll(async () => {
    etcd = await startEtcdCluster({ members: 1 });
  }, 60_000);
  afterAll(async () => {
    await etcd?.stop();
  }, 30_000);

  it('two servers give the same versions for the same state', async () => {
    registerXds();
    const prefix = `/xds-${randomUUID().slice(0, 8)}`;
    const two: RunningServer[] = [];
    for (let i = 0; i < 2; i++) {
      const s = await startServer({ storeUrl: `etcd://${etcd.endpoints.join(',')}${prefix}`, httpAddr: '127.0.0.1:0', nodeName: `beacon-${i + 1}`, initialCheckStatus: 'passing', xds: { addr: '127.0.0.1:0' } });
      servers.push(s);
      two.push(s);
      cleanup.push(() => s.close());
    }
    const [a, b] = await backends('a', 'b');
    await register(two[0]!, { id: 'a', service: 'echo', address: '127.0.0.1', port: a!.port, zone: 'z1' });
    await register(two[1]!, { id: 'b', service: 'echo', address: '127.0.0.1', port: b!.port, zone: 'z2', weight: 5 });
    for (const s of two) expect(Object.keys(await until(() => tally(stubFor(s, 'echo'), 20), (t) => Object.keys(t).length === 2)).sort()).toEqual(['a', 'b']);
    const versions = async (s: RunningServer) =>
      Object.fromEntries((await clients(s))[0]!.types.map((t) => [t.type, t.ack?.version]));
    const [v1, v2] = [await versions(two[0]!), await versions(two[1]!)];
    console.log('versions on both servers:', v1);
    expect(Object.keys(v1).sort()).toEqual(['cluster', 'endpoint', 'listener', 'route']);
    expect(v2).toEqual(v1);
  });
});
