import { assertId, assertInstanceId, LIMITS, type CheckSpec } from '@beacon/core';
import { Ajv } from 'ajv';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseHost } from '../src/health/addr.js';
import { InstanceSchema } from '../src/http/schemas.js';
import type { RunningServer } from '../src/server.js';
import { devServer } from './helpers.js';

/**
 * A property test over every write endpoint of the three APIs, against a real server on a real
 * socket: valid-ish and hostile bodies (wrong types, huge strings, control characters, nested
 * junk, boundary numbers) must never get a 5xx, and every instance stored, read back through the
 * native API, must pass the native Instance schema with a canonical address and path-safe ids.
 */

let server: RunningServer;
beforeAll(async () => {
  server = await devServer();
});
afterAll(async () => {
  await server.close();
});

// ---- generators -----------------------------------------------------------------------------

const hostileString = fc.oneof(
  fc.constantFrom('', '.', '..', '../../etc/passwd', 'a\u0000b', 'a\r\nX-Injected: 1', 'a b', 'evil\u202ecom', '0', '2852039166', '0xa9fea9fe',
    '169.254.169.254', '169.254.169.254.', '0251.0376.0251.0376', '[::1]', '::', 'unix:4242', 'pg/node-1', '%2F', '\u2028', 'é', '💥', '{}', 'null'),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: fc.integer({ min: 0, max: 0x1f }).map((c) => String.fromCharCode(c)), maxLength: 8 }),
  fc.oneof(fc.integer({ min: 250, max: 5000 }), fc.constant(300_000)).map((n) => 'x'.repeat(n)),
);
const boundaryNumber = fc.oneof(
  fc.constantFrom(0, -1, 1, 65535, 65536, 2 ** 31, 2 ** 53, -(2 ** 53), 1e308, -0, 0.5, Number.MAX_SAFE_INTEGER + 1),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
);
const junk: fc.Arbitrary<unknown> = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  boundaryNumber,
  hostileString,
  fc.jsonValue({ maxDepth: 3 }),
  fc.constant(Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`k${i}`, i]))),
);
/** A field that is usually well-formed and sometimes anything at all. */
const field = <T>(good: fc.Arbitrary<T>) => fc.oneof({ weight: 30, arbitrary: good }, { weight: 1, arbitrary: junk });

const goodAddress = fc.constantFrom('127.0.0.1', '127.0.0.1', '127.0.0.1', '10.0.0.5', '::1', 'fd00::5', 'web-1.internal', 'localhost', '::ffff:10.0.0.9', 'DB.Example.com.');
const goodId = fc.constantFrom('a-1', 'b_2', 'pg/node-1', 'x:y@z', 'svc 1', 'c.3');
const goodService = fc.constantFrom('web', 'pg', 'api', 'cache');
const port = field(fc.integer({ min: 0, max: 65535 }));

const interval = field(fc.integer({ min: 100, max: 60_000 }));
const headers = field(fc.dictionary(field(fc.constantFrom('X-A', 'Host')), fc.array(fc.oneof(fc.constantFrom('v', 'a, b'), hostileString), { maxLength: 2 }), { maxKeys: 2 }));
const loopbackUrl = fc.constantFrom('http://127.0.0.1:1/h', 'http://[::1]:1/', 'http://localhost:1/');
/** One check of each kind with the fields that kind takes, each sometimes wrong. */
const nativeCheck = fc.oneof(
  fc.record({ id: field(goodId), kind: fc.constant('ttl'), ttlMs: field(fc.integer({ min: 1000, max: 60_000 })), status: field(fc.constantFrom('passing', 'warning', 'critical')) }, { requiredKeys: ['kind', 'ttlMs'] }),
  fc.record(
    {
      id: field(goodId),
      kind: fc.constant('http'),
      url: field(fc.oneof(loopbackUrl, fc.constantFrom('http://169.254.169.254/', 'http://0x7f000001:1/', 'http://web-1.internal/'))),
      method: field(fc.constantFrom('GET', 'PUT', 'post', 'DELETE')),
      headers,
      body: field(fc.string()),
      intervalMs: interval,
      role: field(fc.constantFrom('readiness', 'liveness')),
    },
    { requiredKeys: ['kind', 'url'] },
  ),
  fc.record(
    { id: field(goodId), kind: fc.constantFrom('tcp', 'grpc'), target: field(fc.constantFrom('127.0.0.1:1', '[::1]:1', 'localhost:1', '127.0.0.1:1/svc', 'unix:4242', '2852039166:80')), intervalMs: interval },
    { requiredKeys: ['kind', 'target'] },
  ),
  fc.record({ kind: field(fc.constantFrom('script', 'bogus')), args: field(fc.array(fc.string(), { maxLength: 2 })) }),
);

const nativeRegistration = fc.record(
  {
    id: field(goodId),
    service: field(goodService),
    address: field(goodAddress),
    port,
    ports: field(fc.dictionary(field(fc.constantFrom('http', 'grpc')), port, { maxKeys: 2 })),
    tags: field(fc.array(field(fc.constantFrom('v1', 'eu', 'primary')), { maxLength: 3 })),
    meta: field(fc.dictionary(fc.constantFrom('version', 'zone'), field(fc.constantFrom('1', 'a')), { maxKeys: 2 })),
    weight: field(fc.integer({ min: 0, max: 65535 })),
    zone: field(fc.constantFrom('eu-1', '')),
    ttlMs: field(fc.integer({ min: 1000, max: 60_000 })),
    checks: field(fc.array(nativeCheck, { maxLength: 2 })),
  },
  { requiredKeys: ['service', 'address', 'port'] },
);

const consulCheck = fc.record({
  CheckID: field(goodId),
  Name: field(fc.constantFrom('c', 'Service check')),
  TTL: field(fc.constantFrom('10s', '1m', '-1s', 'forever')),
  HTTP: field(fc.oneof(loopbackUrl, fc.constantFrom('http://169.254.169.254/', 'http://2852039166/'))),
  Method: field(fc.constantFrom('GET', 'PUT')),
  Header: headers,
  TCP: field(fc.constantFrom('127.0.0.1:1', '0xa9fea9fe:80', '169.254.43518:80')),
  GRPC: field(fc.constantFrom('127.0.0.1:1', 'unix:4242', '127.0.0.1:1/svc')),
  Interval: field(fc.constantFrom('1s', '10s', '0s')),
  Status: field(fc.constantFrom('passing', 'critical', 'bogus')),
  ServiceID: field(goodId),
  Args: field(fc.array(fc.string(), { maxLength: 2 })),
}, { requiredKeys: ['Name', 'CheckID'] }); // without ServiceID: a node check
const consulService = fc.record({
  ID: field(goodId),
  Name: field(goodService),
  Service: field(goodService),
  Address: field(goodAddress),
  Port: port,
  Tags: field(fc.array(field(fc.constantFrom('v1', 'eu')), { maxLength: 3 })),
  Meta: field(fc.dictionary(fc.constantFrom('version', ''), field(fc.constantFrom('1')), { maxKeys: 2 })),
  Weights: field(fc.record({ Passing: field(fc.integer({ min: 1, max: 10 })), Warning: field(fc.integer({ min: 1, max: 10 })) })),
  Check: field(consulCheck),
  Checks: field(fc.array(consulCheck, { maxLength: 2 })),
});
const eurekaInstance = fc.record({
  instance: field(
    fc.record({
      instanceId: field(goodId),
      hostName: field(goodAddress),
      app: field(fc.constantFrom('WEB', 'PG')),
      ipAddr: field(goodAddress),
      status: field(fc.constantFrom('UP', 'DOWN', 'STARTING', 'OUT_OF_SERVICE', 'bogus')),
      port: field(fc.record({ $: port, '@enabled': field(fc.constantFrom('true', 'false')) })),
      securePort: field(fc.record({ $: port, '@enabled': field(fc.constantFrom('true', 'false')) })),
      leaseInfo: field(fc.record({ durationInSecs: field(fc.integer({ min: 1, max: 120 })), renewalIntervalInSecs: field(fc.integer({ min: 1, max: 60 })) })),
      metadata: field(fc.dictionary(fc.constantFrom('zone', 'version'), field(fc.constantFrom('1')), { maxKeys: 2 })),
      vipAddress: field(fc.constantFrom('web', 'pg')),
      dataCenterInfo: field(fc.record({ '@class': field(fc.constantFrom('com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo')), name: field(fc.constantFrom('MyOwn', 'Amazon')) })),
    }),
  ),
});

interface Req {
  method: 'PUT' | 'POST' | 'DELETE';
  path: string;
  body?: unknown;
  raw?: string;
}
const seg = fc.oneof(goodId, hostileString).map((s) => encodeURIComponent(s).slice(0, 300));
const kvKey = fc.oneof(fc.constantFrom('a', 'a/b', 'locks/leader', ''), hostileString).map((s) => s.split('/').map(encodeURIComponent).join('/').slice(0, 600));
const query = fc.oneof(fc.constant(''), fc.constantFrom('?cas=0', '?cas=-1', '?cas=abc', '?acquire=x', '?flags=-1', '?flags=1e99', '?enable=true', '?enable=null', '?value=UP', '?value=bogus', '?dc=x'));

const request: fc.Arbitrary<Req> = fc.oneof(
  // native
  // Registrations are where stored state comes from: generated most often.
  { weight: 8, arbitrary: nativeRegistration.map((body) => ({ method: 'PUT' as const, path: '/api/v1/instances', body })) },
  fc.tuple(seg, fc.constantFrom('heartbeat', 'maintenance', 'drain'), fc.record({ enable: field(fc.boolean()), reason: field(fc.string()) })).map(([id, verb, body]) => ({ method: 'PUT' as const, path: `/api/v1/instances/${id}/${verb}`, body })),
  seg.map((id) => ({ method: 'DELETE' as const, path: `/api/v1/instances/${id}` })),
  fc.tuple(seg, fc.constantFrom('pass', 'warn', 'fail'), fc.record({ note: field(fc.string()) })).map(([id, verb, body]) => ({ method: 'PUT' as const, path: `/api/v1/checks/${id}/${verb}`, body })),
  // Consul
  { weight: 5, arbitrary: consulService.map((body) => ({ method: 'PUT' as const, path: '/v1/agent/service/register', body })) },
  fc.record({ Node: field(fc.constantFrom('n1', 'n2')), Address: field(goodAddress), Service: field(consulService), Check: field(consulCheck), Checks: field(fc.array(consulCheck, { maxLength: 2 })) })
    .map((body) => ({ method: 'PUT' as const, path: '/v1/catalog/register', body })),
  fc.record({ Node: field(fc.constantFrom('n1', 'n2')), ServiceID: field(goodId), CheckID: field(goodId) }).map((body) => ({ method: 'PUT' as const, path: '/v1/catalog/deregister', body })),
  consulCheck.map((body) => ({ method: 'PUT' as const, path: '/v1/agent/check/register', body })),
  fc.tuple(seg, fc.record({ Status: field(fc.constantFrom('passing', 'critical')), Output: field(fc.string()) })).map(([id, body]) => ({ method: 'PUT' as const, path: `/v1/agent/check/update/${id}`, body })),
  fc.tuple(seg, query).map(([id, q]) => ({ method: 'PUT' as const, path: `/v1/agent/service/maintenance/${id}${q}` })),
  seg.map((id) => ({ method: 'PUT' as const, path: `/v1/agent/service/deregister/${id}` })),
  fc.tuple(kvKey, query, fc.oneof(fc.string(), hostileString)).map(([k, q, raw]) => ({ method: 'PUT' as const, path: `/v1/kv/${k}${q}`, raw })),
  fc.array(fc.record({ KV: field(fc.record({ Verb: field(fc.constantFrom('set', 'cas', 'get', 'delete', 'lock', 'bogus')), Key: field(fc.constantFrom('a', 'b/c')), Value: field(fc.base64String()), Index: field(fc.integer({ min: -1000, max: 1000 })), Session: field(goodId) })) }), { maxLength: 3 })
    .map((body) => ({ method: 'PUT' as const, path: '/v1/txn', body })),
  fc.record({ Name: field(fc.string()), TTL: field(fc.constantFrom('10s', '0s', '-1s', '86401s', 'x')), Behavior: field(fc.constantFrom('release', 'delete', 'bogus')), LockDelay: field(fc.constantFrom('15s', 0, -1)), Node: field(fc.constantFrom('test-node', 'nope')), Checks: field(fc.array(goodId, { maxLength: 2 })) })
    .map((body) => ({ method: 'PUT' as const, path: '/v1/session/create', body })),
  fc.tuple(fc.constantFrom('renew', 'destroy'), seg).map(([verb, id]) => ({ method: 'PUT' as const, path: `/v1/session/${verb}/${id}` })),
  // Eureka
  { weight: 4, arbitrary: fc.tuple(fc.constantFrom('WEB', 'PG', 'bad app'), eurekaInstance).map(([app, body]) => ({ method: 'POST' as const, path: `/eureka/apps/${encodeURIComponent(app)}`, body })) },
  fc.tuple(fc.constantFrom('WEB', 'PG'), seg, query).map(([app, id, q]) => ({ method: 'PUT' as const, path: `/eureka/apps/${app}/${id}${q}` })),
  fc.tuple(fc.constantFrom('WEB', 'PG'), seg, query).map(([app, id, q]) => ({ method: 'PUT' as const, path: `/eureka/apps/${app}/${id}/status${q}` })),
  fc.tuple(fc.constantFrom('WEB', 'PG'), seg).map(([app, id]) => ({ method: 'DELETE' as const, path: `/eureka/apps/${app}/${id}` })),
  // Anything at all as a body, raw, on any write path.
  fc.tuple(fc.constantFrom('/api/v1/instances', '/v1/agent/service/register', '/v1/catalog/register', '/v1/agent/check/register', '/v1/txn', '/v1/session/create', '/eureka/apps/WEB'), fc.oneof(fc.string(), fc.jsonValue().map((v) => JSON.stringify(v))))
    .map(([path, raw]) => ({ method: path.startsWith('/eureka') ? ('POST' as const) : ('PUT' as const), path, raw })),
);

// ---- the property ---------------------------------------------------------------------------

/**
 * The two 500s Consul itself answers, kept for fidelity (clients match on them): an `acquire`
 * or txn `lock` naming no live session, and a `dc` other than ours. Any other 5xx is a bug.
 */
const CONSUL_500S = [/^invalid session "/, /^No path to datacenter\b/];

async function send(r: Req): Promise<number> {
  const raw = r.raw ?? (r.body === undefined ? undefined : JSON.stringify(r.body));
  const res = await fetch(server.httpUrl + r.path, {
    method: r.method,
    headers: raw === undefined ? {} : { 'content-type': r.path.startsWith('/v1/kv/') ? 'application/octet-stream' : 'application/json' },
    ...(raw === undefined ? {} : { body: raw }),
  });
  const text = await res.text();
  if (res.status === 500 && r.path.startsWith('/v1/') && CONSUL_500S.some((re) => re.test(text))) return res.status;
  if (res.status >= 500) throw new Error(`${r.method} ${r.path.slice(0, 200)} → ${res.status} ${text.slice(0, 300)}\nbody: ${(raw ?? '').slice(0, 500)}`);
  return res.status;
}

const validInstance = new Ajv({ strict: false, allErrors: true }).compile(InstanceSchema);

/** Every stored instance, read back through the native API, passes the schema and the address and id rules. */
async function assertStoredValid(): Promise<number> {
  const services = (await (await fetch(`${server.httpUrl}/api/v1/services`)).json()) as { name: string }[];
  let n = 0;
  for (const s of services) {
    const res = await fetch(`${server.httpUrl}/api/v1/services/${s.name}/instances`);
    expect(res.status).toBe(200);
    for (const inst of ((await res.json()) as { instances: Record<string, unknown>[] }).instances) {
      n++;
      if (!validInstance(inst)) throw new Error(`stored instance fails the schema: ${JSON.stringify(validInstance.errors)} ${JSON.stringify(inst).slice(0, 500)}`);
      const address = inst.address as string;
      expect(parseHost(address)?.text, `address ${JSON.stringify(address)} is canonical`).toBe(address);
      assertInstanceId(inst.id as string);
      // And it is addressable by its id, URL-encoded.
      const byId = await fetch(`${server.httpUrl}/api/v1/instances/${encodeURIComponent(inst.id as string)}`);
      // (Leases of a second run out while this reads: gone from the catalog too is no finding.)
      if (byId.status !== 404 || server.catalog.instance(inst.id as string))
        expect(byId.status, `GET by id ${JSON.stringify(inst.id)}: ${await byId.text()}`).toBe(200);
      // The API shows no check definitions; the catalog holds them as stored (node checks too).
      for (const c of server.catalog.instance(inst.id as string)?.checks ?? []) assertCheckDefinitionValid(c);
      for (const c of server.catalog.nodeChecks(inst.node as string)) assertCheckDefinitionValid(c);
    }
  }
  return n;
}

/** RFC 9110 field names and values, written out here independently of the server's rule. */
function assertCheckDefinitionValid(c: CheckSpec): void {
  assertId(c.id, 'check id', LIMITS.checkId);
  for (const [name, values] of Object.entries(c.headers ?? {})) {
    expect(name).toMatch(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/);
    for (const v of values) expect(v).not.toMatch(/[\r\n\0]/);
  }
  if (c.target) {
    const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)(?:\/.*)?$/.exec(c.target)!;
    const host = m[1] ?? m[2]!;
    expect(parseHost(host)?.text, `target host ${host} is canonical`).toBe(host);
  }
  if (c.url) expect(parseHost(new URL(c.url).hostname), c.url).toBeDefined();
}

describe('write endpoints under generated input (native, Consul, Eureka)', () => {
  it('never answer 5xx, and never store an instance that fails the schema on read-back', async () => {
    let stored = 0;
    const statuses = new Map<number, number>();
    // Seeded and bounded for CI; FUZZ_SEED and FUZZ_RUNS explore further by hand.
    await fc.assert(
      fc.asyncProperty(fc.array(request, { minLength: 1, maxLength: 6 }), async (batch) => {
        for (const r of batch) {
          const status = await send(r);
          statuses.set(status, (statuses.get(status) ?? 0) + 1);
        }
        stored = Math.max(stored, await assertStoredValid());
      }),
      { seed: Number(process.env.FUZZ_SEED ?? 20261205), numRuns: Number(process.env.FUZZ_RUNS ?? 200), endOnFailure: true },
    );
    // The generators reach both sides: some writes succeed and store instances, many are refused.
    expect(stored).toBeGreaterThan(0);
    expect(statuses.get(200)).toBeGreaterThan(0);
    expect([...statuses.keys()].some((s) => s >= 400 && s < 500)).toBe(true);
    expect((await fetch(`${server.httpUrl}/api/v1/status`)).status).toBe(200);
  }, 60_000);
});
