import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { ApiDeps } from '../../http/deps.js';
import { listMembers, serverUrl } from '../../cluster/members.js';
import { KvStore } from '../../kv/kv.js';
import { Sessions, type SessionHealth } from '../../kv/sessions.js';
import { instanceNodes, NodeDirectory } from '../nodes.js';
import { CatalogIndex } from './catalog-index.js';
import type { ConsulContext, DcScope } from './context.js';
import { UserEvents } from './events.js';
import { installConsulScope } from './http.js';
import { agentRoutes } from './routes/agent.js';
import { catalogRoutes } from './routes/catalog.js';
import { healthRoutes } from './routes/health.js';
import { kvRoutes } from './routes/kv.js';
import { aclRoutes } from './routes/acl.js';
import { miscRoutes } from './routes/misc.js';
import { sessionRoutes } from './routes/session.js';
import { queryRoutes } from './routes/query.js';
import { snapshotRoutes } from '../../http/routes/snapshot.js';
import { ConsulView, type Advertised } from './views.js';
import { ACL_OFF } from '../../acl/types.js';

export interface ConsulOptions {
  /** The datacenter this server answers for (others through federation). Default `dc1`. */
  datacenter?: string;
  /** Reported as Config.Version by /v1/agent/self. Default 1.20.0. */
  version?: string;
  /** Address and port other nodes should use for this server; default the HTTP listen address. */
  advertise?: Advertised;
  /** When set, every /v1 request must carry this token (X-Consul-Token, Bearer, or ?token=); others get 403. */
  aclToken?: string;
  /** Bytes of keys and values the KV store may hold; writes past it answer 413. Default 256 MiB. */
  kvMaxBytes?: number;
  /** Sessions one client address may hold; beyond it /v1/session/create answers 429. Default 256; 0: no cap. */
  sessionsPerClient?: number;
  /** Extra figures for /v1/agent/self's Stats. */
  stats?: () => Record<string, Record<string, string>>;
}

export type { ConsulContext } from './context.js';

/** Consul's HTTP API v1 under /v1, over the same registry, catalog and store as the native API. */
export function consulPlugin(options: ConsulOptions = {}) {
  return async (app: FastifyInstance, deps: ApiDeps): Promise<void> => {
    const { registry, catalog, store, clock, random, metrics, info } = deps;
    const logger = app.log;
    const datacenter = options.datacenter ?? 'dc1';

    let listening: Advertised | undefined;
    const advertise = (): Advertised => {
      if (options.advertise) return options.advertise;
      if (listening) return listening;
      const a = app.server.address() as AddressInfo | null;
      if (!a || typeof a !== 'object') return { address: '127.0.0.1', port: 8500 };
      const address = a.address === '0.0.0.0' ? '127.0.0.1' : a.address === '::' ? '::1' : a.address;
      return (listening = { address, port: a.port });
    };

    const nodes = new NodeDirectory({ store, catalog, clock }, logger);
    const kv = new KvStore({ store, clock, logger, ...(options.kvMaxBytes !== undefined ? { maxBytes: options.kvMaxBytes } : {}) });
    await nodes.start();
    await kv.start();
    const view = new ConsulView({ catalog, registry, nodes, datacenter, serverNode: info.node, advertise, local: true });
    const catalogIndex = new CatalogIndex(catalog, nodes, clock);
    const health: SessionHealth = {
      nodeExists: (n) => view.nodeExists(n),
      checkStatus: (node, id) => {
        if (id === 'serfHealth') return view.nodeExists(node) ? 'passing' : undefined;
        if (id === '_node_maintenance') return nodes.info(node).maintenance ? 'critical' : 'passing';
        const nodeCheck = catalog.nodeCheck(id);
        if (nodeCheck) return nodeCheck.node === node ? nodeCheck.check.status : undefined;
        const inst = catalog.instanceByCheck(id);
        return inst?.checks.find((c) => c.id === id)?.status;
      },
      subscribe: (listener) => catalog.onChange(() => listener()),
    };
    const sessions = new Sessions({ store, clock, random, kv, health, defaultNode: info.node, logger, ...(options.sessionsPerClient !== undefined ? { maxPerClient: options.sessionsPerClient } : {}) });
    await sessions.start();
    const events = new UserEvents(clock, random);

    app.addHook('onListen', async () => {
      // The server is a node of the catalog, as a Consul server is; its record carries its address.
      const { address } = advertise();
      const rec = nodes.record(info.node);
      if (rec?.address === address) return;
      try {
        await nodes.upsert({ name: info.node, address, meta: rec?.meta ?? {} });
      } catch (err) {
        logger.warn({ err, node: info.node }, 'could not record the server node');
      }
    });
    app.addHook('onClose', async () => {
      catalogIndex.close();
      events.close();
      await sessions.close();
      await kv.close();
      await nodes.close();
    });

    // Another DC's catalog in Consul's shapes: its followed view, its nodes known from its instances.
    const remoteViews = new Map<string, ConsulView>();
    const scope = (dcName: string | undefined): DcScope => {
      const dc = deps.federation.datacenter(dcName);
      if (dc.local) return { name: dc.name, local: true, view, catalog };
      const remote = deps.federation.remoteView(dc.name)!;
      let v = remoteViews.get(dc.name);
      if (!v) {
        v = new ConsulView({ catalog: remote, registry: { liveOutput: () => undefined }, nodes: instanceNodes, datacenter: dc.name, serverNode: info.node, advertise, local: false });
        remoteViews.set(dc.name, v);
      }
      return { name: dc.name, local: false, view: v, catalog: remote };
    };

    const ctx: ConsulContext = {
      scope,
      federation: deps.federation,
      queries: deps.queries,
      settings: { datacenter, version: options.version ?? '1.20.0' },
      view,
      catalog,
      registry,
      nodes,
      kv,
      sessions,
      events,
      catalogIndex,
      clock,
      random,
      metrics,
      info,
      limits: deps.limits,
      acl: deps.acl ?? ACL_OFF,
      members: () => {
        const { address, port } = advertise();
        return listMembers(deps, serverUrl(app.server, address, port));
      },
      ...(options.stats ? { stats: options.stats } : {}),
      ...(deps.cluster ? { cluster: deps.cluster } : {}),
    };

    await app.register(
      async (v1) => {
        installConsulScope(v1, {
          datacenter,
          datacenters: () => deps.federation.names(),
          staleSince: (dc) => (dc === datacenter ? catalog : deps.federation.remoteView(dc))?.staleSince,
          clock,
          acl: info.acl,
          onNotFound: (req, reply) => deps.metrics.http.countUnmatched(req, reply),
          ...(options.aclToken ? { aclToken: options.aclToken } : {}),
        });
        await v1.register(async (s) => agentRoutes(s, ctx));
        await v1.register(async (s) => catalogRoutes(s, ctx));
        await v1.register(async (s) => healthRoutes(s, ctx));
        await v1.register(async (s) => kvRoutes(s, ctx));
        await v1.register(async (s) => sessionRoutes(s, { ...ctx, serverNode: info.node }));
        await v1.register(async (s) => miscRoutes(s, ctx));
        await v1.register(async (s) => queryRoutes(s, ctx));
        await v1.register(async (s) => snapshotRoutes(s, deps));
        await v1.register(async (s) => aclRoutes(s, deps));
      },
      { prefix: '/v1' },
    );
  };
}
