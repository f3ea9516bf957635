import type { Clock, Random } from '@beacon/core';
import type { CatalogView } from '../catalog/view.js';
import type { Registry } from '../registry/registry.js';
import type { Store, StoreKind } from '../store/types.js';
import type { ServerMetrics } from './metrics.js';
import type { ActiveChecks } from '../health/active-checks.js';
import type { ClusterInfo } from '../cluster/membership.js';
import type { ListenerState } from './readiness.js';
import type { RequestLimits } from './limits/index.js';
import type { Federation } from '../federation/federation.js';
import type { PreparedQueries } from '../federation/queries.js';
import type { AclResolver } from '../acl/types.js';
import type { AclAdmin } from '../acl/admin.js';

export interface ServerInfo {
  version: string;
  storeKind: StoreKind;
  startedAt: number;
  node: string;
  /** Listening beyond loopback without access control (`--insecure-open`). */
  insecureOpen: boolean;
  /** ACLs on (`--acl`): default deny, tokens required. */
  acl: boolean;
  /** What an operator must know about this server's exposure (also logged at start). */
  warnings: string[];
  /** The datacenter this server answers for. */
  datacenter: string;
}

/** What the HTTP routes need; each plugin takes only the parts it uses. */
export interface ApiDeps {
  registry: Registry;
  catalog: CatalogView;
  store: Store;
  clock: Clock;
  random: Random;
  metrics: ServerMetrics;
  /** Per-client rates and caps on writes and watches, shared by every API. */
  limits: RequestLimits;
  info: ServerInfo;
  /** This server's datacenter and the remote ones it follows (`?dc=`, failover). */
  federation: Federation;
  /** Prepared queries (Consul's /v1/query and `<name>.query` in DNS). */
  queries: PreparedQueries;
  /** Whose request this is and what it may do ({@link ACL_OFF} without `--acl`); routes decide with `authorize` from acl/decide.ts. */
  acl: AclResolver;
  /** Tokens, policies and roles (the ACL APIs); absent without `--acl`. */
  aclAdmin?: AclAdmin;
  /** The listeners this server means to serve on, and whether each is bound now (for /readyz). */
  listeners: () => ListenerState[];
  /** Active checks run by this server (absent when the server runs none). */
  activeChecks?: ActiveChecks;
  /** Clustered mode: the live servers and who owns what (Consul's /v1/status/leader and /peers can use it). */
  cluster?: ClusterInfo;
  /** Told once a snapshot restore shows in the catalog (self-preservation counts the restored leases; the ACL built-ins come back if the snapshot had none). */
  snapshotRestored?: () => void | Promise<void>;
}
