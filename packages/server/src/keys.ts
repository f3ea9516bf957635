/** The store's key layout: the one place that knows where things live. */
export const KEYS = {
  root: '/beacon/',
  instances: '/beacon/instances/',
  tombstones: '/beacon/tombstones/',
  nodes: '/beacon/nodes/',
  /** Node-level checks (Consul's checks without a ServiceID): they count against every instance on their node. */
  nodeChecks: '/beacon/node-checks/',
  /** Consul-compatible KV pairs and sessions, and Eureka-only instance fields (the catalog ignores them). */
  kv: '/beacon/kv/',
  sessions: '/beacon/sessions/',
  eurekaInstances: '/beacon/eureka/instances/',
  /** Prepared queries (Consul's /v1/query), by id. */
  queries: '/beacon/queries/',
  query: (id: string) => `/beacon/queries/${id}`,
  /** Clustered mode: one leased key per live server, and TTL-check reports relayed to their owner. */
  members: '/beacon/members/',
  ttlReports: '/beacon/ttl-reports/',
  /**
   * Clustered mode: the etcd leases instances share, each key naming the server that owns the
   * lease (and attached to it), and heartbeats relayed to an owner, one key per (owner, sender).
   */
  sharedLeases: '/beacon/leases/',
  heartbeats: '/beacon/heartbeats/',
  sharedLease: (id: number) => `/beacon/leases/${id}`,
  heartbeatsFor: (owner: string) => `/beacon/heartbeats/${owner}/`,
  heartbeatRelay: (owner: string, from: string) => `/beacon/heartbeats/${owner}/${from}`,
  eurekaInstance: (id: string) => `/beacon/eureka/instances/${id}`,
  /**
   * ACL state (tokens, policies, roles) and the keys that make its names unique: one prefix, so one
   * watch keeps every server's copy current and a snapshot carries it as Consul's does.
   */
  acl: '/beacon/acl/',
  member: (node: string) => `/beacon/members/${node}`,
  ttlReport: (checkId: string) => `/beacon/ttl-reports/${checkId}`,
  instance: (id: string) => `/beacon/instances/${id}`,
  tombstone: (id: string) => `/beacon/tombstones/${id}`,
  node: (name: string) => `/beacon/nodes/${name}`,
  nodeCheck: (checkId: string) => `/beacon/node-checks/${checkId}`,
} as const;

export type KeyKind = 'instance' | 'tombstone' | 'node' | 'node-check' | 'other';

export function classifyKey(key: string): { kind: KeyKind; name: string } {
  if (key.startsWith(KEYS.instances)) return { kind: 'instance', name: key.slice(KEYS.instances.length) };
  if (key.startsWith(KEYS.tombstones)) return { kind: 'tombstone', name: key.slice(KEYS.tombstones.length) };
  if (key.startsWith(KEYS.nodes)) return { kind: 'node', name: key.slice(KEYS.nodes.length) };
  if (key.startsWith(KEYS.nodeChecks)) return { kind: 'node-check', name: key.slice(KEYS.nodeChecks.length) };
  return { kind: 'other', name: key };
}
