import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../src/server.js';
import { decodeSnapshot } from '../src/snapshot/index.js';
import { etcdUnavailableReason, startEtcdCluster, type EtcdCluster } from './etcd-cluster.js';
import { api, devServer, until } from './helpers.js';

const etcdSkip = etcdUnavailableReason();
if (etcdSkip) console.warn(`skipping the clustered snapshot test: ${etcdSkip}`);

let a: RunningServer;
let b: RunningServer;

beforeAll(async () => {
  [a, b] = await Promise.all([devServer({ nodeName: 'node-a' }), devServer({ nodeName: 'node-b' })]);
});

afterAll(async () => {
  await Promise.all([a?.close(), b?.close()]);
});

async function save(s: RunningServer): Promise<Buffer> {
  const res = await fetch(`${s.httpUrl}/api/v1/snapshot`);
  expect(res.status).toBe(200);
  return Buffer.from(await res.arrayBuffer());
}

async function restore(s: RunningServer, body: Buffer, path = '/api/v1/snapshot') {
  const res = await fetch(s.httpUrl + path, { method: 'PUT', body });
  return { status: res.status, body: (await res.json()) as any };
}

/** What a client can see of a server: catalog, KV and sessions, without the indexes a restore renumbers. */
async function visible(s: RunningServer) {
  const services = (await api(s, 'GET', '/api/v1/services')).body.map(({ index, ...svc }: any) => svc) as { name: string }[];
  const catalog: Record<string, unknown[]> = {};
  for (const { name } of services) {
    const { body } = await api(s, 'GET', `/api/v1/services/${name}/instances`);
    catalog[name] = body.instances.map(({ createIndex, modifyIndex, ...i }: any) => i);
  }
  const kv = (await api(s, 'GET', '/v1/kv/?recurse')).body.map((p: any) => ({ Key: p.Key, Value: p.Value, Flags: p.Flags, Session: p.Session }));
  const sessions = (await api(s, 'GET', '/v1/session/list')).body.map((x: any) => ({ ID: x.ID, Name: x.Name, Node: x.Node, TTL: x.TTL, Behavior: x.Behavior }));
  return { services, catalog, kv, sessions };
}

describe('snapshots', () => {
  it('taken under a write load, restore into a fresh server with the same catalog, KV and sessions', async () => {
    await api(a, 'PUT', '/api/v1/instances', { service: 'api', address: '10.0.0.1', port: 8080, tags: ['v1'], meta: { team: 'core' }, ttlMs: 30_000 });
    await api(a, 'PUT', '/api/v1/instances', { service: 'web', address: '10.0.0.2', port: 80, checks: [{ kind: 'ttl', ttlMs: 60_000 }] });
    await api(a, 'PUT', '/v1/kv/config/greeting', 'hello');
    const session = (await api(a, 'PUT', '/v1/session/create', { Name: 'leader', TTL: '30s' })).body.ID as string;
    expect((await api(a, 'PUT', `/v1/kv/locks/leader?acquire=${session}`, 'me')).body).toBe(true);

    // Two writers, each registering an instance and then writing its KV key, until told to stop.
    let stop = false;
    let written = 0;
    const writer = async (w: number) => {
      for (let i = 0; !stop; i++) {
        await api(a, 'PUT', '/api/v1/instances', { id: `load-${w}-${i}`, service: 'load', address: '10.1.0.1', port: 1000 + i });
        await api(a, 'PUT', `/v1/kv/load/${w}-${i}`, String(i));
        written++;
      }
    };
    const writers = [writer(1), writer(2)];
    while (written < 20) await new Promise((r) => setTimeout(r, 5));
    const during = await save(a);
    const writtenAtSave = written;
    while (written < writtenAtSave + 10) await new Promise((r) => setTimeout(r, 5));
    stop = true;
    await Promise.all(writers);

    // One revision: each KV key of the load is written after its instance, so it never appears without it.
    const snap = decodeSnapshot(during);
    const keys = new Set(snap.kvs.map((kv) => kv.key));
    const loadKv = [...keys].filter((k) => k.startsWith('/beacon/kv/load/'));
    expect(loadKv.length).toBeGreaterThan(0);
    for (const k of loadKv) expect(keys.has(`/beacon/instances/load-${k.slice('/beacon/kv/load/'.length)}`)).toBe(true);

    const r1 = await restore(b, during);
    expect(r1).toMatchObject({ status: 200, body: { keys: snap.kvs.length, leases: snap.leases.length, revision: snap.header.revision } });
    const loadIds = (await api(b, 'GET', '/api/v1/services/load/instances')).body.instances.map((i: any) => `/beacon/instances/${i.id}`).sort();
    expect(loadIds).toEqual([...keys].filter((k) => k.startsWith('/beacon/instances/load-')).sort());

    // With the load stopped, a second snapshot over the first: B answers as A does, and what
    // only B had goes, saying why.
    await api(b, 'PUT', '/api/v1/instances', { id: 'only-on-b', service: 'extra', address: '10.2.0.1', port: 1, ttlMs: 30_000 });
    const after = await save(a);
    expect((await restore(b, after, '/v1/snapshot')).status).toBe(200);
    const [va, vb] = await Promise.all([visible(a), visible(b)]);
    expect(va.sessions).toHaveLength(1);
    expect(va.kv.length).toBeGreaterThan(20);
    expect(vb.catalog).toEqual(va.catalog);
    expect(vb.services).toEqual(va.services);
    expect(vb.kv).toEqual(va.kv);
    expect(vb.sessions).toEqual(va.sessions);
    expect(vb.kv.find((p: any) => p.Key === 'locks/leader')).toMatchObject({ Session: session });
    expect(vb.catalog.load).toHaveLength(va.catalog.load!.length);

    const gone = (await api(b, 'GET', '/api/v1/events?instance=only-on-b')).body.events.at(-1);
    expect(gone).toMatchObject({ kind: 'deregistered', cause: 'api', reason: expect.stringMatching(/^removed by restoring a snapshot taken at revision \d+$/) });

    // The restored lease is a fresh one of the same TTL, renewable on B.
    const inst = b.catalog.instance('api-10.0.0.1-8080')!;
    expect(inst.ttlMs).toBe(30_000);
    expect(await b.store.leaseInfo(b.catalog.leaseOf(inst.id))).toMatchObject({ ttlMs: 30_000 });
    expect((await api(b, 'PUT', `/api/v1/instances/${inst.id}/heartbeat`)).status).toBe(200);
    // Self-preservation counts the restored leases only, not those of the state the restore replaced.
    const leased = Object.values(vb.catalog).flat().filter((i: any) => i.ttlMs !== undefined);
    expect(leased).toHaveLength(1);
    expect((await api(b, 'GET', '/api/v1/self-preservation')).body).toMatchObject({ leases: 1, atRisk: 0 });
  });

  it('refuses a truncated or corrupted file with invalid_argument and changes nothing', async () => {
    const good = await save(a);
    const before = await save(b);
    const cases: [string, Buffer, RegExp][] = [
      ['truncated', good.subarray(0, Math.floor(good.length / 2)), /truncated/],
      ['flipped byte', Buffer.from(good).fill(good[200]! ^ 0x01, 200, 201), /checksum does not match/],
      ['empty', Buffer.alloc(0), /empty/],
      ['not a snapshot', Buffer.from('{"hello":"world"}\n'), /does not start with a snapshot header/],
    ];
    for (const [what, body, message] of cases) {
      const r = await restore(b, body);
      expect(r.status, what).toBe(400);
      expect(r.body.error.code, what).toBe('invalid_argument');
      expect(r.body.error.message, what).toMatch(message);
    }
    // The same records at the same revision.
    const [was, is] = [decodeSnapshot(before), decodeSnapshot(await save(b))];
    expect(is.header.revision).toBe(was.header.revision);
    expect(is.kvs).toEqual(was.kvs);
  });
});

describe.skipIf(etcdSkip)('snapshots in clustered mode', () => {
  let etcd: EtcdCluster | undefined;
  const servers: RunningServer[] = [];

  afterAll(async () => {
    for (const s of servers) await s.close();
    await etcd?.stop();
  });

  it('move between the embedded store and etcd both ways; every server of the cluster follows a restore', async () => {
    etcd = await startEtcdCluster({ members: 1 });
    const storeUrl = `etcd://${etcd.endpoints.join(',')}/snap`;
    for (const nodeName of ['etcd-1', 'etcd-2']) servers.push(await startServer({ storeUrl, httpAddr: '127.0.0.1:0', nodeName, dns: false }));
    const [e1, e2] = servers as [RunningServer, RunningServer];

    const fromEmbedded = await save(a);
    const r = await restore(e1, fromEmbedded);
    expect(r.status).toBe(200);
    const want = await visible(a);
    expect((await visible(e1)).catalog).toEqual(want.catalog);
    // The other server learns the restore from the etcd feed alone.
    const seen = await until(() => visible(e2), (v) => JSON.stringify(v.catalog) === JSON.stringify(want.catalog));
    expect(seen.catalog).toEqual(want.catalog);
    expect(seen.kv).toEqual(want.kv);
    expect(seen.sessions).toEqual(want.sessions);

    // Read back from etcd at one revision, into a fresh embedded server.
    const fromEtcd = decodeSnapshot(await save(e2));
    expect(fromEtcd.header.backend).toBe('etcd');
    expect(fromEtcd.kvs.map((kv) => kv.key)).toEqual(decodeSnapshot(fromEmbedded).kvs.map((kv) => kv.key));
    const c = await devServer({ nodeName: 'node-c' });
    servers.push(c);
    expect((await restore(c, await save(e2))).status).toBe(200);
    const back = await visible(c);
    expect(back.catalog).toEqual(want.catalog);
    expect(back.kv).toEqual(want.kv);
    expect(back.sessions).toEqual(want.sessions);
  }, 60_000);
});
