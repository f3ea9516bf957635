import * as grpc from '@grpc/grpc-js';
import * as grpcXds from '@grpc/grpc-js-xds';
import { xdsBootstrap } from '@beacon/client/xds';
import type { RunningServer } from '../src/server.js';
import { decodeMessage, TYPE_URLS, xdsProtos, type ResourceType } from '../src/xds/protos.js';
import { typeNameOf } from '../src/xds/resources.js';
import type { DiscoveryRequest, DiscoveryResponse } from '../src/xds/stream.js';
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

/** One call; resolves with the backend's name. `waitForReady: false` fails at once on a channel that cannot work. */
export function who(stub: grpc.Client, deadlineMs = 5_000, waitForReady = true): Promise<string> {
  return new Promise((resolve, reject) =>
    (stub as unknown as { who(req: Buffer, opts: grpc.CallOptions, cb: (err: Error | null, res: Buffer) => void): void }).who(
      Buffer.alloc(0),
      { deadline: Date.now() + deadlineMs, waitForReady },
      (err, res) => (err ? reject(err) : resolve(res.toString())),
    ),
  );
}

export async function register(server: RunningServer, body: Record<string, unknown>, headers: Record<string, string> = {}): Promise<void> {
  const r = await api(server, 'PUT', '/api/v1/instances', body, headers);
  if (r.status >= 300) throw new Error(`register: ${r.status} ${JSON.stringify(r.body)}`);
}

/** NACKs this server received, from its own counter: any one fails a test. */
export async function nacks(server: RunningServer, headers: Record<string, string> = {}): Promise<number> {
  const text = (await api<string>(server, 'GET', '/metrics', undefined, headers)).body;
  let n = 0;
  for (const m of text.matchAll(/^beacon_xds_nacks_total\{[^}]*\} (\d+)/gm)) n += Number(m[1]);
  return n;
}

/** An ADS stream opened by hand (decoded messages), with gRPC metadata: what a token-carrying client sends. */
export interface AdsStream {
  /** Every DiscoveryResponse received, in order. */
  responses: DiscoveryResponse[];
  /** Sends a DiscoveryRequest for `type` (the node goes with the first one). */
  ask(type: ResourceType, names: string[], ack?: DiscoveryResponse): void;
  /** The names in the last response of `type` received. */
  names(type: ResourceType): string[] | undefined;
  /** How the server ended the stream. */
  ended: Promise<grpc.StatusObject>;
  close(): void;
}

export function adsStream(port: number, metadata: Record<string, string> = {}, node: Record<string, unknown> = { id: 'raw' }): AdsStream {
  const Client = grpc.makeClientConstructor(xdsProtos().ads, 'Ads');
  const client = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(metadata)) md.set(k, v);
  const call = (client as unknown as { StreamAggregatedResources(md: grpc.Metadata): grpc.ClientDuplexStream<DiscoveryRequest, DiscoveryResponse> }).StreamAggregatedResources(md);
  const responses: DiscoveryResponse[] = [];
  call.on('data', (r: DiscoveryResponse) => responses.push(r));
  call.on('error', () => {});
  const ended = new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
  let first = true;
  return {
    responses,
    ask(type, names, ack) {
      call.write({ ...(first ? { node } : {}), type_url: TYPE_URLS[type], resource_names: names, version_info: ack?.version_info ?? '', response_nonce: ack?.nonce ?? '' });
      first = false;
    },
    names(type) {
      const last = responses.filter((r) => r.type_url === TYPE_URLS[type]).at(-1);
      return last?.resources.map((a) => {
        const m = decodeMessage(typeNameOf(a.type_url), a.value) as { name?: string; cluster_name?: string };
        return m.name ?? m.cluster_name!;
      });
    },
    ended,
    close() {
      call.cancel();
      client.close();
    },
  };
}
