import type { ClusterInfo } from '../../cluster/membership.js';
import type { MemberView } from '../../cluster/members.js';
import type { Clock, Random } from '@beacon/core';
import type { CatalogView } from '../../catalog/view.js';
import type { CatalogReader } from '../../catalog/types.js';
import type { Federation } from '../../federation/federation.js';
import type { PreparedQueries } from '../../federation/queries.js';
import type { ServerInfo } from '../../http/deps.js';
import type { ServerMetrics } from '../../http/metrics.js';
import type { KvStore } from '../../kv/kv.js';
import type { Sessions } from '../../kv/sessions.js';
import type { Registry } from '../../registry/registry.js';
import type { NodeDirectory } from '../nodes.js';
import type { CatalogIndex } from './catalog-index.js';
import type { RequestLimits } from '../../http/limits/index.js';
import type { UserEvents } from './events.js';
import type { AclResolver } from '../../acl/types.js';
import type { ConsulView } from './views.js';

export interface ConsulSettings {
  datacenter: string;
  /** What /v1/agent/self reports as Config.Version (some clients gate features on it). */
  version: string;
}

/** One datacenter as the Consul routes read it: its catalog and the Consul shapes of it. */
export interface DcScope {
  name: string;
  local: boolean;
  view: ConsulView;
  catalog: CatalogReader;
}

/** Everything the Consul routes share; each route group takes only the parts it uses. */
export interface ConsulContext {
  settings: ConsulSettings;
  /** The datacenter `?dc=` names (this one when absent): unknown → not_found, never followed yet → unavailable. */
  scope: (dc: string | undefined) => DcScope;
  federation: Federation;
  queries: PreparedQueries;
  view: ConsulView;
  catalog: CatalogView;
  registry: Registry;
  nodes: NodeDirectory;
  kv: KvStore;
  sessions: Sessions;
  events: UserEvents;
  catalogIndex: CatalogIndex;
  clock: Clock;
  random: Random;
  metrics: ServerMetrics;
  info: ServerInfo;
  /** The tokens' rights: parked blocking queries re-check theirs when they change. */
  acl: AclResolver;
  /** Per-client rates and caps; blocking queries park in its `blocking` slots. */
  limits: RequestLimits;
  /** Clustered mode: the live Beacon servers, for /v1/status/leader and /v1/status/peers. */
  cluster?: ClusterInfo;
  /** The Beacon servers (every one in clustered mode), for /v1/agent/members. */
  members: () => Promise<MemberView[]>;
  /** Extra figures for /v1/agent/self's Stats (self-preservation, when wired). */
  stats?: () => Record<string, Record<string, string>>;
}
