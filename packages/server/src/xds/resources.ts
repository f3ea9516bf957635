import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import type { Instance } from '@beacon/core';
import type { ServiceEntry } from '../catalog/types.js';
import { clusterPolicy, type ClusterPolicy, type PolicyProblem } from './policy.js';
import { EXTENSION_TYPES, encodeMessage, packAny, RESOURCE_TYPES, TYPE_URLS, type ResourceType } from './protos.js';

/** Who is asking: proxyless gRPC (one API listener per target) or Envoy (one ingress listener). */
export type Profile = 'grpc' | 'envoy';
export const PROFILES: readonly Profile[] = ['grpc', 'envoy'];

/** One encoded resource: what goes into a DiscoveryResponse, and the hash its version is made of. */
export interface Resource {
  name: string;
  any: { type_url: string; value: Buffer };
  hash: string;
}

/** Every resource derived from one service, by type and name. */
export type ServiceResources = Record<ResourceType, Resource[]>;

/** Name of Envoy's one ingress listener and of its route configuration. */
export const INGRESS = 'beacon-ingress';
const ROUTER_FILTER = 'envoy.filters.http.router';
const HCM_FILTER = 'envoy.filters.network.http_connection_manager';
const ADS_SOURCE = { ads: {}, resource_api_version: 'V3' };

export const WEIGHT_MIN = 1;
export const WEIGHT_MAX = 128;

/** What `S` and each named port `S:<port>` resolve to: the resource name and the instance's port for it. */
export interface Target {
  name: string;
  port: (i: Instance) => number | undefined;
}

export function targetsOf(entry: ServiceEntry): Target[] {
  const named = new Set<string>();
  for (const i of entry.instances) for (const p of Object.keys(i.ports)) named.add(p);
  return [
    { name: entry.name, port: (i) => i.port },
    ...[...named].sort().map((p) => ({ name: `${entry.name}:${p}`, port: (i: Instance) => i.ports[p] })),
  ];
}

/** A resource before encoding: its name and the message as a plain object (enums by name). */
export interface Described {
  name: string;
  message: Record<string, unknown>;
}

export interface BuiltService {
  resources: ServiceResources;
  problems: PolicyProblem[];
  /** Instances left out of the endpoints because their address is not an IP literal (xDS clients NACK names). */
  skipped: string[];
}

/** The service's Listener, RouteConfiguration, Cluster and ClusterLoadAssignment per target, as plain messages. */
export function describeService(entry: ServiceEntry, profile: Profile): { messages: Record<ResourceType, Described[]>; problems: PolicyProblem[]; skipped: string[] } {
  const { policy, problems } = clusterPolicy(entry.instances);
  const skipped = entry.instances.filter((i) => isIP(i.address) === 0).map((i) => i.id);
  const messages: Record<ResourceType, Described[]> = { listener: [], route: [], cluster: [], endpoint: [] };
  for (const t of targetsOf(entry)) {
    // Envoy gets one ingress listener for all services (ingressListener); gRPC one API listener per target.
    switch (profile) {
      case 'grpc':
        messages.listener.push({ name: t.name, message: apiListener(t.name) });
        messages.route.push({ name: t.name, message: routeConfiguration(t.name) });
        break;
      case 'envoy':
        break;
    }
    messages.cluster.push({ name: t.name, message: cluster(t.name, policy, profile) });
    messages.endpoint.push({ name: t.name, message: loadAssignment(t, entry.instances, policy.lb) });
  }
  return { messages, problems, skipped };
}

/** {@link describeService}, encoded. */
export function buildService(entry: ServiceEntry, profile: Profile): BuiltService {
  const { messages, problems, skipped } = describeService(entry, profile);
  const resources: ServiceResources = { listener: [], route: [], cluster: [], endpoint: [] };
  for (const type of RESOURCE_TYPES) for (const d of messages[type]) resources[type].push(resource(type, d.name, d.message));
  return { resources, problems, skipped };
}

export function resource(type: ResourceType, name: string, obj: Record<string, unknown>): Resource {
  const value = encodeMessage(typeNameOf(TYPE_URLS[type]), obj);
  return { name, any: { type_url: TYPE_URLS[type], value }, hash: createHash('sha256').update(value).digest('base64url') };
}

/** `envoy.config.cluster.v3.Cluster` from its type URL. */
export function typeNameOf(typeUrl: string): string {
  return typeUrl.slice(typeUrl.lastIndexOf('/') + 1);
}

function httpConnectionManager(routeName: string): Record<string, unknown> {
  return {
    stat_prefix: routeName,
    codec_type: 'AUTO',
    rds: { config_source: ADS_SOURCE, route_config_name: routeName },
    // grpc-js refuses an HCM whose last filter is not the router.
    http_filters: [{ name: ROUTER_FILTER, typed_config: packAny(EXTENSION_TYPES.router, {}) }],
  };
}

function apiListener(name: string): Record<string, unknown> {
  return { name, api_listener: { api_listener: packAny(EXTENSION_TYPES.hcm, httpConnectionManager(name)) } };
}

/** Envoy's listener on `address:port` (from its node metadata), routing by Host to every service. */
export function ingressListener(address: string, port: number): Record<string, unknown> {
  return {
    name: INGRESS,
    address: { socket_address: { address, port_value: port } },
    filter_chains: [{ filters: [{ name: HCM_FILTER, typed_config: packAny(EXTENSION_TYPES.hcm, httpConnectionManager(INGRESS)) }] }],
  };
}

/** Envoy's route configuration: a virtual host per service, matched on `Host: S` (any port). */
export function ingressRoutes(services: readonly string[]): Record<string, unknown> {
  return {
    name: INGRESS,
    virtual_hosts: services.map((s) => ({ name: s, domains: [s, `${s}:*`], routes: [{ match: { prefix: '/' }, route: { cluster: s } }] })),
  };
}

/**
 * What a proxyless client is sent for a target its token may not read, whether or not the service
 * exists: the target's API listener and a route configuration without a route. grpc-js then fails
 * the channel's calls at once with UNAVAILABLE. Sending nothing would make it wait for its 15 s
 * resource timer and then for the call's deadline; and a "does not exist" answer for denied names
 * only would tell the client which names exist.
 */
export function deniedTarget(type: 'listener' | 'route', name: string): Resource {
  switch (type) {
    case 'listener':
      return resource('listener', name, apiListener(name));
    case 'route':
      return resource('route', name, { name, virtual_hosts: [{ name, domains: ['*'], routes: [] }] });
  }
}

function routeConfiguration(name: string): Record<string, unknown> {
  return { name, virtual_hosts: [{ name, domains: ['*'], routes: [{ match: { prefix: '' }, route: { cluster: name } }] }] };
}

function cluster(name: string, policy: ClusterPolicy, profile: Profile): Record<string, unknown> {
  const c: Record<string, unknown> = {
    name,
    type: 'EDS',
    eds_cluster_config: { eds_config: ADS_SOURCE, service_name: name },
    lb_policy: policy.lb,
  };
  if (policy.ring) c.ring_hash_lb_config = { minimum_ring_size: wrap(policy.ring.min), maximum_ring_size: wrap(policy.ring.max) };
  const o = policy.outlier;
  if (o) {
    c.outlier_detection = {
      interval: duration(o.intervalMs),
      base_ejection_time: duration(o.baseEjectionMs),
      max_ejection_percent: wrap(o.maxEjectionPercent),
      consecutive_5xx: wrap(o.consecutive5xx),
      failure_percentage_threshold: wrap(o.failurePercentageThreshold),
      // Without enforcement Envoy and gRPC only count failures: the threshold is meant to eject.
      ...(o.failurePercentageThreshold !== undefined ? { enforcing_failure_percentage: { value: 100 } } : {}),
    };
  }
  const b = policy.breakers;
  if (b) {
    c.circuit_breakers = {
      thresholds: [
        {
          priority: 'DEFAULT',
          max_connections: wrap(b.maxConnections),
          max_pending_requests: wrap(b.maxPendingRequests),
          max_requests: wrap(b.maxRequests),
          max_retries: wrap(b.maxRetries),
        },
      ],
    };
  }
  switch (profile) {
    case 'grpc':
      break;
    case 'envoy':
      // gRPC backends: Envoy must speak HTTP/2 upstream, and needs a connect timeout.
      c.connect_timeout = { seconds: 5 };
      c.typed_extension_protocol_options = {
        [EXTENSION_TYPES.httpProtocolOptions]: packAny(EXTENSION_TYPES.httpProtocolOptions, { explicit_http_config: { http2_protocol_options: {} } }),
      };
      break;
  }
  return c;
}

/** Clamps an instance's weight into what xDS clients accept well (1–128; grpc-js sums them in 32 bits). */
export function clampWeight(w: number): number {
  return Math.min(WEIGHT_MAX, Math.max(WEIGHT_MIN, Math.round(w)));
}

export type XdsHealth = 'HEALTHY' | 'UNHEALTHY' | 'DRAINING';

export function healthOf(i: Instance): XdsHealth {
  if (i.conditions.terminating) return 'DRAINING';
  return i.conditions.ready ? 'HEALTHY' : 'UNHEALTHY';
}

/**
 * One locality per zone. Under ROUND_ROBIN grpc-js splits calls across localities by their weight
 * and evenly inside one, so a locality weighs the sum of its healthy instances' weights. Under
 * RING_HASH it weighs each endpoint by locality weight × endpoint weight, so every locality weighs
 * 1 and the instance weights alone decide.
 */
function loadAssignment(t: Target, instances: readonly Instance[], lb: ClusterPolicy['lb']): Record<string, unknown> {
  const zones = new Map<string, { weight: number; endpoints: Record<string, unknown>[] }>();
  for (const i of instances) {
    const port = t.port(i);
    if (port === undefined || isIP(i.address) === 0) continue;
    let z = zones.get(i.zone);
    if (!z) zones.set(i.zone, (z = { weight: 0, endpoints: [] }));
    const weight = clampWeight(i.weight);
    const health = healthOf(i);
    if (health === 'HEALTHY') z.weight += weight;
    z.endpoints.push({
      endpoint: { address: { socket_address: { address: i.address, port_value: port } } },
      health_status: health,
      load_balancing_weight: { value: weight },
    });
  }
  return {
    cluster_name: t.name,
    endpoints: [...zones.keys()].sort().map((zone) => {
      const z = zones.get(zone)!;
      // A locality without a weight is dropped by grpc-js; one with no healthy endpoint still
      // needs one, and gets no traffic anyway.
      const weight = lb === 'RING_HASH' ? 1 : Math.max(1, z.weight);
      return { locality: { zone }, load_balancing_weight: { value: weight }, lb_endpoints: z.endpoints };
    }),
  };
}

function wrap(v: number | undefined): { value: number } | undefined {
  return v === undefined ? undefined : { value: v };
}

function duration(ms: number | undefined): { seconds: number; nanos: number } | undefined {
  return ms === undefined ? undefined : { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1_000_000 };
}

/** The version of a response: a hash of its resources' names and contents, the same on every server. */
export function versionOf(resources: readonly Resource[]): string {
  const h = createHash('sha256');
  for (const r of resources) h.update(r.name).update('\0').update(r.hash).update('\n');
  return h.digest('hex').slice(0, 16);
}
