import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { createClient } from '@beacon/client';
import { parseGrpcTarget, registerGrpcResolver } from '@beacon/client/grpc';
import { api, beaconServer, until } from './helpers.js';

const json = {
  serialize: (v: unknown) => Buffer.from(JSON.stringify(v)),
  deserialize: (b: Buffer) => JSON.parse(b.toString()) as unknown,
};
const EchoService = {
  say: {
    path: '/demo.Echo/Say',
    requestStream: false,
    responseStream: false,
    requestSerialize: json.serialize,
    requestDeserialize: json.deserialize,
    responseSerialize: json.serialize,
    responseDeserialize: json.deserialize,
  },
} satisfies grpc.ServiceDefinition;
const EchoClient = grpc.makeGenericClientConstructor(EchoService, 'Echo');

const cleanup: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

async function echoServer(name: string): Promise<{ port: number; calls: number; stop(): void }> {
  const server = new grpc.Server();
  const state = { port: 0, calls: 0, stop: () => server.forceShutdown() };
  server.addService(EchoService, {
    say: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => {
      state.calls++;
      cb(null, { from: name });
    },
  });
  state.port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))));
  cleanup.push(() => server.forceShutdown());
  return state;
}

function say(stub: grpc.Client): Promise<string> {
  return new Promise((resolve, reject) =>
    (stub as unknown as { say(req: unknown, opts: grpc.CallOptions, cb: (err: Error | null, res: { from: string }) => void): void }).say({}, { deadline: Date.now() + 5_000 }, (err, res) =>
      err ? reject(err) : resolve(res.from),
    ),
  );
}

describe('gRPC name resolver', () => {
  it('parses targets', () => {
    expect(parseGrpcTarget('payments')).toEqual({ service: 'payments', port: undefined });
    expect(parseGrpcTarget('/payments:grpc')).toEqual({ service: 'payments', port: 'grpc' });
    expect(() => parseGrpcTarget('Pay ments')).toThrow(/invalid beacon target/);
  });

  it('a channel to beacon:///echo follows the live instance list', async () => {
    const beacon = await beaconServer();
    cleanup.push(() => beacon.close());
    const client = createClient({ servers: [beacon.httpUrl] });
    cleanup.push(() => client.close());
    await registerGrpcResolver(client, { grpc });

    const s = await Promise.all(['echo-1', 'echo-2', 'echo-3'].map((n) => echoServer(n)));
    // Registered with a named port, as a service that also speaks HTTP would.
    for (const [k, srv] of s.entries()) {
      await api(beacon.httpUrl, 'PUT', '/api/v1/instances', { id: `echo-${k + 1}`, service: 'echo', address: '127.0.0.1', port: 1, ports: { grpc: srv.port } });
    }
    const stub = new EchoClient('beacon:///echo:grpc', grpc.credentials.createInsecure());
    cleanup.push(() => stub.close());

    const seen = new Set<string>();
    for (let i = 0; i < 30; i++) seen.add(await say(stub));
    expect([...seen].sort()).toEqual(['echo-1', 'echo-2', 'echo-3']);

    // Removal reaches the channel: echo-2 gets no more calls.
    await api(beacon.httpUrl, 'DELETE', '/api/v1/instances/echo-2');
    await until(async () => {
      const before = s[1]!.calls;
      for (let i = 0; i < 6; i++) await say(stub);
      return s[1]!.calls === before;
    }, 'echo-2 no longer called');
    const frozen = s[1]!.calls;
    for (let i = 0; i < 30; i++) expect(await say(stub)).not.toBe('echo-2');
    expect(s[1]!.calls).toBe(frozen);

    // A new instance is picked up.
    const fourth = await echoServer('echo-4');
    await api(beacon.httpUrl, 'PUT', '/api/v1/instances', { id: 'echo-4', service: 'echo', address: '127.0.0.1', port: fourth.port });
    await until(async () => (await say(stub)) === 'echo-4' || fourth.calls > 0, 'echo-4 called');
  });

  it('calls fail with UNAVAILABLE while the service has no instance', async () => {
    const beacon = await beaconServer();
    cleanup.push(() => beacon.close());
    const client = createClient({ servers: [beacon.httpUrl] });
    cleanup.push(() => client.close());
    await registerGrpcResolver(client, { grpc });
    const stub = new EchoClient('beacon:///nobody', grpc.credentials.createInsecure());
    cleanup.push(() => stub.close());
    const err = await say(stub).catch((e: grpc.ServiceError) => e);
    expect((err as grpc.ServiceError).code).toBe(grpc.status.UNAVAILABLE);
  });
});
