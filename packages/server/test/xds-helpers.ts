import * as grpc from '@grpc/grpc-js';
import * as grpcXds from '@grpc/grpc-js-xds';
import { xdsBootstrap } from '@beacon/client/xds';
import type { RunningServer } from '../src/server.js';
import { api } from './helpers.js';

let registered = false;
/** grpc-js-xds registers its resolver and balancers process-wide: once per test process. */
export function registerXds(): void {
  if (registered) return;
  grpcXds.register();
  registered = true;
}

/** A one-method gRPC service with no .proto: the reply names the backend that served it. */
const WhoService = {
  who: {
    path: '/beacon.test.Who/Who',
    requestStream: false,
    responseStream: false,
    requestSerialize: (v: Buffer) => v,
    requestDeserialize: (b: Buffer) => b,
    responseSerialize: (v: Buffer) => v,
    responseDeserialize: (b: Buffer) => b,
  },
} satisfies grpc.ServiceDefinition;
const WhoClient = grpc.makeGenericClientConstructor(WhoService, 'Who');

export interface Backend {
  name: string;
  port: number;
  calls: number;
  stop(): void;
}

/** A real gRPC server on a free loopback port that counts its calls. */
export async function backend(name: string): Promise<Backend> {
  const server = new grpc.Server();
  const b: Backend = { name, port: 0, calls: 0, stop: () => server.forceShutdown() };
  server.addService(WhoService, {
    who: (_call: unknown, cb: grpc.sendUnaryData<Buffer>) => {
      b.calls++;
      cb(null, Buffer.from(name));
    },
  });
  b.port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  return b;
}

/** A channel to `xds:///target` with its own xDS client, bootstrapped by the SDK helper. */
export function xdsStub(target: string, xdsPort: number, nodeId = 'test'): grpc.Client {
  const bootstrap = xdsBootstrap({ server: `127.0.0.1:${xdsPort}`, node: { id: nodeId } });
  return new WhoClient(`xds:///${target}`, grpc.credentials.createInsecure(), {
    'grpc.TEST_ONLY_DO_NOT_USE_IN_PROD.xds_bootstrap_config': JSON.stringify(bootstrap),
  });
}

/** One call; resolves with the backend's name. */
export function who(stub: grpc.Client, deadlineMs = 5_000): Promise<string> {
  return new Promise((resolve, reject) =>
    (stub as unknown as { who(req: Buffer, opts: grpc.CallOptions, cb: (err: Error | null, res: Buffer) => void): void }).who(
      Buffer.alloc(0),
      { deadline: Date.now() + deadlineMs, waitForReady: true },
      (err, res) => (err ? reject(err) : resolve(res.toString())),
    ),
  );
}

export async function register(server: RunningServer, body: Record<string, unknown>): Promise<void> {
  const r = await api(server, 'PUT', '/api/v1/instances', body);
  if (r.status >= 300) throw new Error(`register: ${r.status} ${JSON.stringify(r.body)}`);
}

/** NACKs this server received, from its own counter: any one fails a test. */
export async function nacks(server: RunningServer): Promise<number> {
  const text = (await api<string>(server, 'GET', '/metrics')).body;
  let n = 0;
  for (const m of text.matchAll(/^beacon_xds_nacks_total\{[^}]*\} (\d+)/gm)) n += Number(m[1]);
  return n;
}
