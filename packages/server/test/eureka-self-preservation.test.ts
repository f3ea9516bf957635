import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '@beacon/core';
import type { RunningServer } from '../src/server.js';
import { api, devServer } from './helpers.js';

let server: RunningServer;
const clock = new ManualClock();
const warnings: string[] = [];
const logger = {
  level: 'warn',
  fatal() {},
  error() {},
  warn(_o: unknown, msg?: string) {
    if (msg) warnings.push(msg);
  },
  info() {},
  debug() {},
  trace() {},
  silent() {},
  child() {
    return logger;
  },
};

beforeAll(async () => {
  server = await devServer({ clock, logger: logger as never, selfPreservation: { minLeases: 5, tickMs: 1_000 } });
});

afterAll(async () => {
  await server.close();
});

const ids = Array.from({ length: 10 }, (_, i) => `shop-${i}`);

async function register(id: string): Promise<void> {
  const body = {
    instance: { instanceId: id, hostName: `${id}.local`, app: 'SHOP', ipAddr: '127.0.0.1', port: { $: 9000 }, dataCenterInfo: { name: 'MyOwn' }, leaseInfo: { durationInSecs: 10 } },
  };
  expect((await api(server, 'POST', '/eureka/apps/SHOP', body)).status).toBe(204);
}

/** Moves the manual clock one second at a time; `renewing` instances heartbeat every 3 s through Eureka. */
async function run(ms: number, renewing: string[]): Promise<void> {
  for (let t = 0; t < ms; t += 1_000) {
    if ((clock.now() / 1_000) % 3 === 0) for (const id of renewing) expect((await api(server, 'PUT', `/eureka/apps/SHOP/${id}`)).status).toBe(200);
    clock.advance(1_000);
    await new Promise((r) => setImmediate(r));
  }
}

describe('self-preservation through the Eureka API', () => {
  it('keeps instances whose heartbeats stop all at once, says so, and resumes when heartbeats return', async () => {
    for (const id of ids) await register(id);
    await run(4_000, ids);
    let status = await api(server, 'GET', '/api/v1/self-preservation');
    expect(status.body).toMatchObject({ enabled: true, active: false, leases: 10 });

    // The server stops hearing from 8 of 10 instances: it pauses eviction before their leases run out.
    const heard = ids.slice(0, 2);
    await run(30_000, heard);
    status = await api(server, 'GET', '/api/v1/self-preservation');
    expect(status.body).toMatchObject({ active: true, held: 8 });
    expect(status.body.reason).toMatch(/8 of 10 leases/);
    expect(warnings.some((w) => w.startsWith('self-preservation ON'))).toBe(true);
    const metrics = await api(server, 'GET', '/metrics');
    expect(metrics.body).toMatch(/beacon_self_preservation_active 1/);
    const all = await api(server, 'GET', '/eureka/apps/SHOP', undefined, { accept: 'application/json' });
    expect(all.body.application.instance).toHaveLength(10);

    // Heartbeats come back: eviction resumes, nothing was lost.
    await run(4_000, ids);
    status = await api(server, 'GET', '/api/v1/self-preservation');
    expect(status.body).toMatchObject({ active: false, activations: 1 });
    expect(warnings.some((w) => w.startsWith('self-preservation OFF'))).toBe(true);
    expect((await api(server, 'GET', '/api/v1/services/shop/instances')).body.instances).toHaveLength(10);

    // Cancelling on purpose never counts: eight instances leave, and the rest expire as usual when silent.
    for (const id of ids.slice(2)) expect((await api(server, 'DELETE', `/eureka/apps/SHOP/${id}`)).status).toBe(200);
    await run(15_000, ids.slice(0, 1));
    status = await api(server, 'GET', '/api/v1/self-preservation');
    expect(status.body).toMatchObject({ active: false, activations: 1 });
    expect((await api(server, 'GET', '/api/v1/services/shop/instances')).body.instances.map((i: any) => i.id)).toEqual(['shop-0']);
  });
});
