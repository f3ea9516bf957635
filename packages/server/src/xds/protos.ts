import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
// Importing proto-loader also registers google/protobuf/descriptor.proto among protobufjs's
// built-in files, which validate.proto imports: the vendored tree need not carry it.
import { fromJSON } from '@grpc/proto-loader';
import protobuf from 'protobufjs';

/** The four resource types Beacon serves, by their xDS v3 type URL. */
export const TYPE_URLS = {
  listener: 'type.googleapis.com/envoy.config.listener.v3.Listener',
  route: 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration',
  cluster: 'type.googleapis.com/envoy.config.cluster.v3.Cluster',
  endpoint: 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment',
} as const;

export type ResourceType = keyof typeof TYPE_URLS;
export const RESOURCE_TYPES: readonly ResourceType[] = ['listener', 'route', 'cluster', 'endpoint'];

export function resourceTypeOf(typeUrl: string): ResourceType | undefined {
  for (const t of RESOURCE_TYPES) if (TYPE_URLS[t] === typeUrl) return t;
  return undefined;
}

/** Messages Beacon packs into `google.protobuf.Any` beside the four resources. */
export const EXTENSION_TYPES = {
  hcm: 'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
  router: 'envoy.extensions.filters.http.router.v3.Router',
  httpProtocolOptions: 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
} as const;

export interface XdsProtos {
  root: protobuf.Root;
  /** `envoy.service.discovery.v3.AggregatedDiscoveryService`, for `grpc.Server.addService`. */
  ads: grpc.ServiceDefinition;
}

let loaded: XdsProtos | undefined;

/** Parses the vendored protos once per process (about 0.2 s; docs/xds.md). */
export function xdsProtos(): XdsProtos {
  if (loaded) return loaded;
  const dir = protoDir();
  // The entry points, as scripts/vendor-xds-protos.mjs vendored them with their imports.
  const files = JSON.parse(readFileSync(join(dir, 'entries.json'), 'utf8')) as string[];
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => (target.startsWith('google/protobuf/') ? target : join(dir, target));
  root.loadSync(files, { keepCase: true });
  root.resolveAll();
  const pkg = grpc.loadPackageDefinition(
    fromJSON(root.toJSON(), { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true }),
  );
  const svc = (pkg as any).envoy.service.discovery.v3.AggregatedDiscoveryService as grpc.ServiceClientConstructor;
  loaded = { root, ads: svc.service };
  return loaded;
}

/** packages/server/protos, from src/xds (tests) or dist/xds (the built server). */
function protoDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const dir = join(here, '..', '..', 'protos');
  if (!existsSync(join(dir, 'entries.json'))) throw new Error(`xDS protos not found in ${dir}`);
  return dir;
}

/**
 * Encodes a message of `typeName` from a plain object (enums by name). protobufjs drops fields the
 * proto does not have: the tests decode every resource again and compare (xds/resources.test.ts).
 */
export function encodeMessage(typeName: string, obj: Record<string, unknown>): Buffer {
  const type = xdsProtos().root.lookupType(typeName);
  return Buffer.from(type.encode(type.fromObject(obj)).finish());
}

/** `google.protobuf.Any` of a message, as proto-loader serializes it. */
export function packAny(typeName: string, obj: Record<string, unknown>): { type_url: string; value: Buffer } {
  return { type_url: `type.googleapis.com/${typeName}`, value: encodeMessage(typeName, obj) };
}

/** Decodes what {@link encodeMessage} wrote, for the round-trip checks in tests and docs. */
export function decodeMessage(typeName: string, bytes: Uint8Array): Record<string, unknown> {
  const type = xdsProtos().root.lookupType(typeName);
  return type.toObject(type.decode(bytes), { longs: String, enums: String, defaults: false, oneofs: false });
}
