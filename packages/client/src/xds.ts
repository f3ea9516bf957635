import { writeFile } from 'node:fs/promises';

/** What the bootstrap says about this client; Beacon reads `metadata` (docs/xds.md, "Bootstrap"). */
export interface XdsNode {
  /** Names this client in Beacon's `/api/v1/xds/clients` and its NACK log lines. Default `beacon-client-<pid>`. */
  id?: string;
  cluster?: string;
  /** The client's own zone (informational for grpc-js; Envoy uses it for zone-aware routing). */
  zone?: string;
  /** Extra node metadata; `beacon.profile` (`grpc` or `envoy`) picks the resources Beacon serves. */
  metadata?: Record<string, string>;
}

export interface XdsBootstrapOptions {
  /** Beacon's xDS address, `host:port` as given to `beacon server --xds-addr`. */
  server: string;
  node?: XdsNode;
}

/** The grpc-js (and grpc-go, grpc-java) xDS bootstrap: one ADS server, insecure channel, xDS v3. */
export interface XdsBootstrap {
  xds_servers: { server_uri: string; channel_creds: { type: 'insecure' }[]; server_features: string[] }[];
  node: { id: string; cluster: string; locality: { zone?: string }; metadata: Record<string, string> };
}

/**
 * The xDS bootstrap that points a proxyless gRPC client at a Beacon server. With it, a channel to
 * `xds:///payments` gets Beacon's ready instances, weights, zones and draining, with no Beacon code
 * in the process.
 *
 * @example
 * import * as grpc from '@grpc/grpc-js';
 * import * as xds from '@grpc/grpc-js-xds';
 * import { xdsBootstrap } from '@beacon/client/xds';
 *
 * process.env.GRPC_XDS_BOOTSTRAP_CONFIG = JSON.stringify(xdsBootstrap({ server: '127.0.0.1:8502' }));
 * xds.register();
 * const stub = new PaymentsClient('xds:///payments', grpc.credentials.createInsecure());
 */
export function xdsBootstrap(opts: XdsBootstrapOptions): XdsBootstrap {
  if (!/^(?:\[[^\]]+\]|[^:\s/]+):\d{1,5}$/.test(opts.server)) throw new TypeError(`xDS server ${JSON.stringify(opts.server)}: expected host:port, e.g. 127.0.0.1:8502`);
  const n = opts.node ?? {};
  return {
    xds_servers: [{ server_uri: opts.server, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
    node: {
      id: n.id ?? `beacon-client-${process.pid}`,
      cluster: n.cluster ?? '',
      // grpc-js refuses a bootstrap whose node has no locality, even an empty one.
      locality: n.zone !== undefined ? { zone: n.zone } : {},
      metadata: { 'beacon.profile': 'grpc', ...n.metadata },
    },
  };
}

/**
 * Writes {@link xdsBootstrap} to `path` as JSON, for `GRPC_XDS_BOOTSTRAP=path` (any gRPC language).
 *
 * @example
 * await writeXdsBootstrap('/etc/grpc/xds-bootstrap.json', { server: 'beacon.internal:8502', node: { id: 'checkout-1' } });
 */
export async function writeXdsBootstrap(path: string, opts: XdsBootstrapOptions): Promise<XdsBootstrap> {
  const b = xdsBootstrap(opts);
  await writeFile(path, JSON.stringify(b, null, 2) + '\n');
  return b;
}
