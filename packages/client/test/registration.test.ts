import { EventEmitter } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { closeOnSignals, createClient, type RegistrationEvent } from '@beacon/client';
import { api, beaconServer, until } from './helpers.js';

const cleanup: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

describe('register()', () => {
  it('keeps the lease alive with heartbeats well past the TTL', async () => {
    const server = await beaconServer();
    cleanup.push(() => server.close());
    const client = createClient({ servers: [server.httpUrl] });
    cleanup.push(() => client.close());
    const reg = await client.register({ service: 'ledger', address: '127.0.0.1', port: 7001 }, { ttlMs: 1_000, drainGraceMs: 0 });
    cleanup.push(() => reg.close());
    expect(reg.id).toBe('ledger-127.0.0.1-7001');
    const beats: number[] = [];
    reg.onEvent((e) => e.type === 'heartbeat' && beats.push(e.remainingMs));
    // Three TTLs later the instance is still there: only heartbeats can have kept it.
    await until(() => beats.length >= 6, 'six heartbeats', 10_000);
    const got = await api(server.httpUrl, 'GET', `/api/v1/instances/${reg.id}`);
    expect(got.status).toBe(200);
    expect(got.body.ttlMs).toBe(1_000);
  });

  it('registers again after the server restarts with an empty store', async () => {
    const first = await beaconServer();
    const port = first.httpAddress.port;
    const client = createClient({ servers: [first.httpUrl] });
    cleanup.push(() => client.close());
    const reg = await client.register({ service: 'ledger', address: '127.0.0.1', port: 7002, tags: ['blue'] }, { ttlMs: 1_000, drainGraceMs: 0 });
    cleanup.push(() => reg.close());
    const events: RegistrationEvent[] = [];
    reg.onEvent((e) => events.push(e));

    await first.close();
    await until(() => events.some((e) => e.type === 'error' && e.during === 'heartbeat'), 'a failed heartbeat while the server is down');
    const second = await beaconServer(port);
    cleanup.push(() => second.close());
    await until(() => events.some((e) => e.type === 'reregistered'), 're-registration');
    const got = await api(second.httpUrl, 'GET', `/api/v1/instances/${reg.id}`);
    expect(got.status).toBe(200);
    expect(got.body.tags).toEqual(['blue']);
    // And it goes on heartbeating against the new server.
    const n = events.length;
    await until(() => events.slice(n).some((e) => e.type === 'heartbeat'), 'heartbeat after restart');
  });

  it('close() drains, waits the grace period, then deregisters — clients stop picking it first', async () => {
    const server = await beaconServer();
    cleanup.push(() => server.close());
    const client = createClient({ servers: [server.httpUrl] });
    cleanup.push(() => client.close());
    const a = await client.register({ service: 'ledger', address: '127.0.0.1', port: 7003 }, { ttlMs: 5_000, drainGraceMs: 300 });
    const b = await client.register({ service: 'ledger', address: '127.0.0.1', port: 7004 }, { ttlMs: 5_000, drainGraceMs: 0 });
    cleanup.push(() => b.close());
    const view = client.discover('ledger');
    const all = client.discover('ledger', { passing: false });
    await Promise.all([view.ready(), all.ready()]);
    expect(view.instances()).toHaveLength(2);

    const order: string[] = [];
    a.onEvent((e) => order.push(e.type));
    const closing = a.close();
    expect(a.status).toBe('draining');
    // Draining: out of the ready view, still registered (terminating) during the grace period.
    await until(() => view.instances().length === 1, 'drained instance leaves the ready view');
    const draining = all.get(a.id);
    expect(draining?.conditions).toMatchObject({ ready: false, terminating: true });
    await closing;
    expect(a.status).toBe('closed');
    expect(order).toEqual(['draining', 'deregistered']);
    await until(() => all.get(a.id) === undefined, 'deregistered');
    expect((await api(server.httpUrl, 'GET', `/api/v1/instances/${a.id}`)).status).toBe(404);
  });

  it('closeOnSignals closes registrations, then the rest, then exits', async () => {
    const server = await beaconServer();
    cleanup.push(() => server.close());
    const client = createClient({ servers: [server.httpUrl] });
    const reg = await client.register({ service: 'ledger', address: '127.0.0.1', port: 7005 }, { ttlMs: 5_000, drainGraceMs: 50 });
    const proc = new EventEmitter();
    const steps: string[] = [];
    const exited = new Promise<number>((resolve) =>
      closeOnSignals(
        [
          { close: async () => (await reg.close(), steps.push('registration')) },
          { close: async () => (await client.close(), steps.push('client')) },
        ],
        { process: proc as unknown as NodeJS.Process, exit: resolve },
      ),
    );
    proc.emit('SIGTERM');
    proc.emit('SIGTERM');
    expect(await exited).toBe(0);
    expect(steps).toEqual(['registration', 'client']);
    expect((await api(server.httpUrl, 'GET', `/api/v1/instances/${reg.id}`)).status).toBe(404);
    expect(proc.listenerCount('SIGTERM') + proc.listenerCount('SIGINT')).toBe(0);
  });

  it('rejects a bad registration with the server’s error', async () => {
    const server = await beaconServer();
    cleanup.push(() => server.close());
    const client = createClient({ servers: [server.httpUrl] });
    cleanup.push(() => client.close());
    await expect(client.register({ service: 'Not A Name', address: '127.0.0.1', port: 1 })).rejects.toMatchObject({ code: 'invalid_argument' });
    await expect(client.register({ service: 'ok', address: '127.0.0.1', port: 1 }, { ttlMs: 10 })).rejects.toMatchObject({ code: 'invalid_argument' });
  });
});
