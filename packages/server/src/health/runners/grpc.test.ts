import { createServer as createNetServer, type Socket } from 'node:net';
import { systemClock, type CheckSpec } from '@beacon/core';
import * as grpc from '@grpc/grpc-js';
import { fromJSON } from '@grpc/proto-loader';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CheckRunners } from './factory.js';
import { CheckDialer, staticResolver } from '../dial.js';
import { CheckTargetPolicy } from '../target-policy.js';

/** The real run-time gate, with the default policy (loopback is a fine target for these tests). */
const dial = new CheckDialer(new CheckTargetPolicy()).dial;

// The server side is built from the real grpc.health.v1 schema through protobufjs, so the
// runner's hand-written encoding is checked against an independent implementation.
const HEALTH_SCHEMA = {
  nested: {
    grpc: { nested: { health: { nested: { v1: { nested: {
      HealthCheckRequest: { fields: { service: { type: 'string', id: 1 } } },
      HealthCheckResponse: {
        fields: { status: { type: 'ServingStatus', id: 1 } },
        nested: { ServingStatus: { values: { UNKNOWN: 0, SERVING: 1, NOT_SERVING: 2, SERVICE_UNKNOWN: 3 } } },
      },
      Health: { methods: { Check: { requestType: 'HealthCheckRequest', responseType: 'HealthCheckResponse' } } },
    } } } } } },
  },
};

type HealthService = grpc.ServiceDefinition;
const healthService = (
  grpc.loadPackageDefinition(fromJSON(HEALTH_SCHEMA, { enums: String, defaults: true })) as unknown as {
    grpc: { health: { v1: { Health: { service: HealthService } } } };
  }
).grpc.health.v1.Health.service;

function spec(target: string, extra: Partial<CheckSpec> = {}): CheckSpec {
  return {
    id: 'g1', name: 'g1', kind: 'grpc', role: 'readiness', target, timeoutMs: 3000,
    successesBeforePassing: 1, failuresBeforeWarning: 1, failuresBeforeCritical: 1, ...extra,
  };
}

function bind(server: grpc.Server, host: string): Promise<number> {
  return new Promise((resolve, reject) =>
    server.bindAsync(`${host}:0`, grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))),
  );
}

describe('gRPC check runner (real @grpc/grpc-js server on loopback)', () => {
  const statuses: Record<string, string> = { '': 'SERVING', web: 'SERVING', db: 'NOT_SERVING', cache: 'UNKNOWN' };
  const requested: string[] = [];
  const server = new grpc.Server();
  server.addService(healthService, {
    Check: (call: grpc.ServerUnaryCall<{ service: string }, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      requested.push(call.request.service);
      const s = statuses[call.request.service];
      if (s === undefined) return cb({ code: grpc.status.NOT_FOUND, details: 'unknown service' });
      cb(null, { status: s });
    },
  });
  const bare = new grpc.Server(); // no health service at all
  const sockets = new Set<Socket>();
  const silent = createNetServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  let port = 0;
  let barePort = 0;
  let silentPort = 0;
  let refusedPort = 0;
  const runners = new CheckRunners({ clock: systemClock, dial });

  beforeAll(async () => {
    port = await bind(server, '127.0.0.1');
    barePort = await bind(bare, '127.0.0.1');
    silentPort = await new Promise<number>((r) => silent.listen(0, '127.0.0.1', () => r((silent.address() as { port: number }).port)));
    const tmp = createNetServer();
    refusedPort = await new Promise<number>((r) => tmp.listen(0, '127.0.0.1', () => r((tmp.address() as { port: number }).port)));
    await new Promise((r) => tmp.close(r));
  });

  afterAll(async () => {
    await runners.close();
    server.forceShutdown();
    bare.forceShutdown();
    for (const s of sockets) s.destroy();
    await new Promise((r) => silent.close(r));
  });

  it('SERVING for the whole server (no service name) is passing', async () => {
    const r = await runners.create(spec(`127.0.0.1:${port}`)).run();
    expect(r.status).toBe('passing');
    expect(r.output).toBe(`gRPC health 127.0.0.1:${port}: SERVING`);
    expect(requested.at(-1)).toBe('');
  });

  it('sends the service name and reads SERVING', async () => {
    const r = await runners.create(spec(`127.0.0.1:${port}`, { grpcService: 'web' })).run();
    expect(r.status).toBe('passing');
    expect(requested.at(-1)).toBe('web');
  });

  it('takes the service from a Consul-style target host:port/service', async () => {
    const r = await runners.create(spec(`127.0.0.1:${port}/db`)).run();
    expect(requested.at(-1)).toBe('db');
    expect(r.status).toBe('critical');
    expect(r.output).toContain('NOT_SERVING');
  });

  it('UNKNOWN is critical', async () => {
    const r = await runners.create(spec(`127.0.0.1:${port}`, { grpcService: 'cache' })).run();
    expect(r.status).toBe('critical');
    expect(r.output).toContain(': UNKNOWN');
  });

  it('an unknown service is critical (NOT_FOUND)', async () => {
    const r = await runners.create(spec(`127.0.0.1:${port}`, { grpcService: 'nope' })).run();
    expect(r.status).toBe('critical');
    expect(r.output).toContain('NOT_FOUND');
    expect(r.output).toContain('unknown service');
  });

  it('a server without the health service is critical (UNIMPLEMENTED)', async () => {
    const r = await runners.create(spec(`127.0.0.1:${barePort}`)).run();
    expect(r.status).toBe('critical');
    expect(r.output).toContain('UNIMPLEMENTED');
  });

  it('a refused port is critical (UNAVAILABLE)', async () => {
    const r = await runners.create(spec(`127.0.0.1:${refusedPort}`)).run();
    expect(r.status).toBe('critical');
    expect(r.output).toContain('UNAVAILABLE');
  });

  it('a server that accepts and never speaks HTTP/2 is critical after the timeout', async () => {
    const r = await runners.create(spec(`127.0.0.1:${silentPort}`, { timeoutMs: 200 })).run();
    expect(r.status).toBe('critical');
    expect(r.output).toContain('timed out after 200 ms');
  });

  it('sees a recovered server at the next run (no reconnect backoff carried over)', async (ctx) => {
    const runner = runners.create(spec(`127.0.0.1:${refusedPort}`));
    expect((await runner.run()).status).toBe('critical');
    // The server comes up on the port that was refused a moment ago.
    const exact = new grpc.Server();
    exact.addService(healthService, { Check: (_c: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, { status: 'SERVING' }) });
    const ok = await new Promise<boolean>((resolve) =>
      exact.bindAsync(`127.0.0.1:${refusedPort}`, grpc.ServerCredentials.createInsecure(), (err) => resolve(!err)),
    );
    try {
      if (!ok) ctx.skip(); // someone else took the port meanwhile
      expect((await runner.run()).status).toBe('passing');
    } finally {
      exact.forceShutdown();
    }
  });

  it('dials the vetted IP: a target host named "unix" is a name, never a unix socket', async () => {
    const named = new CheckRunners({ clock: systemClock, dial: new CheckDialer(new CheckTargetPolicy(), staticResolver({ unix: ['127.0.0.1'] })).dial });
    const r = await named.create(spec(`unix:${port}`)).run();
    expect(r.status).toBe('passing');
    expect(r.output).toBe(`gRPC health unix:${port}: SERVING`);
    await named.close();
  });

  it('works over IPv6 loopback', async (ctx) => {
    const v6 = new grpc.Server();
    v6.addService(healthService, { Check: (_c: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, { status: 'SERVING' }) });
    const p = await bind(v6, '[::1]').catch(() => 0);
    try {
      if (!p) ctx.skip();
      const r = await runners.create(spec(`[::1]:${p}`)).run();
      expect(r.status).toBe('passing');
    } finally {
      v6.forceShutdown();
    }
  });
});
