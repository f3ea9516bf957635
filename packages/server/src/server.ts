import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { hostname } from 'node:os';
import type { AddressInfo } from 'node:net';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import { assertDatacenterName, errors, systemClock, systemRandom, type CheckStatus, type Clock, type Random } from '@beacon/core';
import { CatalogView } from './catalog/view.js';
import { Registry } from './registry/registry.js';
import { buildHttpApp, type HttpAppOptions, type HttpTimeouts } from './http/app.js';
import { RequestLimits, type RequestLimitsConfig } from './http/limits/index.js';
import { ServerMetrics } from './http/metrics.js';
import type { ApiDeps } from './http/deps.js';
import { openEmbeddedStore } from './store/embedded.js';
import { meteredStore } from './store/metered.js';
import type { Store } from './store/types.js';
import { formatHostPort, parseHostPort } from './addr.js';
import { listenFailed } from './listen-error.js';
import { checkExposure, openListeners } from './exposure.js';
import { createDnsServer, parseDnsConfig, type DnsConfigInput } from './dns/index.js';
import { ActiveChecks } from './health/active-checks.js';
import { CheckRunners } from './health/runners/factory.js';
import { CheckTargetPolicy, type Listener } from './health/target-policy.js';
import { CheckDialer } from './health/dial.js';
import type { FlapDampingOptions } from './health/flap.js';
import { VERSION } from './version.js';
import { consulPlugin, type ConsulOptions } from './compat/consul/index.js';
import { eurekaPlugin, type EurekaOptions } from './compat/eureka/index.js';
import { SelfPreservation, type SelfPreservationOptions } from './preservation/self-preservation.js';
import { selfPreservationPlugin } from './preservation/routes.js';
import { openStoreUrl } from './store/url.js';
import { clusterPlugin, Membership, SharedLeases, TtlReportRelay, type ClusterInfo } from './cluster/index.js';
import { serverUrl } from './cluster/members.js';
import { AuditFile } from './audit/log.js';
import { AnonymousDnsCatalog } from './dns/anonymous.js';
import { XdsServer, xdsPlugin } from './xds/index.js';
import { builtUiDir, uiPlugin, type UiOptions } from './ui/index.js';
import { Federation } from './federation/federation.js';
import type { RemoteDatacenter } from './federation/config.js';
import type { FailoverPolicy } from './federation/failover.js';
import { executeQuery, PreparedQueries } from './federation/queries.js';
import type { DnsFederation } from './dns/backend.js';
import { preciseClock, type TlsOptions } from '@beacon/client';
import { AclState } from './acl/state.js';
import { AclAdmin } from './acl/admin.js';
import { ACL_OFF } from './acl/types.js';

export interface ServerConfig {
  /** Keep everything in memory (nothing written to disk). */
  dev?: boolean;
  /** The source commit of this build, for `beacon_build_info`. Default `unknown`. */
  commit?: string;
  /** Directory of the embedded store. Default ./beacon-data. */
  dataDir?: string;
  /** host:port of the HTTP API. Default 127.0.0.1:8500; port 0 picks a free one. */
  httpAddr?: string;
  /** Append a JSON line per write and per refused request to this file (`--audit-log`); reopened by {@link RunningServer.reopenAuditLog}. */
  auditLog?: string;
  /** Serve the HTTP API over TLS only (HTTPS, TLS 1.2 or later); see docs/security.md. */
  tls?: HttpTlsConfig;
  nodeName?: string;
  initialCheckStatus?: CheckStatus;
  historySize?: number;
  /** Estimated bytes the change history may hold (`--history-bytes`); default LIMITS.historyBytes (64 MiB). */
  historyBytes?: number;
  logger?: FastifyBaseLogger;
  clock?: Clock;
  random?: Random;
  /** CIDRs active checks may target besides the instance's own address (`--check-allow`). */
  checkAllow?: string[];
  /** Run script checks (`--enable-script-checks`); refused at registration otherwise. */
  enableScriptChecks?: boolean;
  /** Active checks running at once. Default 1024. */
  maxChecksInFlight?: number;
  /** Flap damping of active checks; `false` turns it off. */
  flapDamping?: Partial<FlapDampingOptions> | false;
  /** An already open store (tests, clustered mode); closed with the server. */
  store?: Store;
  /** Clustered mode: `etcd://host:port,host:port,…[/prefix]` (`--store`), opened here instead of the embedded store. */
  storeUrl?: string;
  /** Clustered mode: how long to wait at start for etcd to answer (`--store-wait`). Default 10 s. */
  storeWaitMs?: number;
  /** Clustered mode over `etcds://`: the CA of etcd's certificate and this server's client certificate (PEM contents). */
  storeTls?: { ca?: string | Buffer; cert?: string | Buffer; key?: string | Buffer };
  /** Clustered mode: an etcd user and password (etcd's auth enabled). */
  storeAuth?: { username: string; password: string };
  /** Clustered mode (an etcd store): TTL of this server's membership lease. Default 3000 ms; see docs/clustering.md. */
  cluster?: { memberTtlMs?: number };
  plugins?: HttpAppOptions['plugins'];
  /** Consul's HTTP API under /v1 (on by default); `false` turns it off. */
  consul?: ConsulOptions | false;
  /** Eureka's REST API under /eureka and /eureka/v2 (on by default); `false` turns it off. */
  eureka?: EurekaOptions | false;
  /** DNS interface (UDP and TCP; see docs/dns.md). Off unless given: the CLI gives it by default (127.0.0.1:8600). */
  dns?: DnsConfigInput | false;
  /** xDS v3 (ADS, state of the world) for proxyless gRPC and Envoy on this `host:port` (`--xds-addr`; docs/xds.md). Off unless given. */
  xds?: { addr: string; coalesceMs?: number };
  /** Serve HTTP or DNS on a non-loopback address although there is no access control (`--insecure-open`); refused otherwise. */
  insecureOpen?: boolean;
  /** Access control (`--acl`): default deny; tokens, policies and roles kept in the store (docs/security.md). */
  acl?: boolean;
  /** Pause lease eviction when too many leases lapse at once (on by default); `false` turns it off. */
  selfPreservation?: Omit<SelfPreservationOptions, 'clock' | 'logger'> | false;
  /** Per-client rates and caps on writes and watches (docs/operations.md, "Request limits"). */
  limits?: RequestLimitsConfig;
  /** Header, request and keep-alive timeouts of the HTTP server. */
  httpTimeouts?: HttpTimeouts;
  /** The web UI at /ui (on by default, from the installed @beacon/ui build); `false` turns it off. */
  ui?: UiOptions | false;
  /** This server's datacenter (`--datacenter`): DNS names, the Consul API, `?dc=`. Default `dc1`. */
  datacenter?: string;
  /** Remote datacenters to follow (`--federate`), and how (docs/federation.md). */
  federation?: FederationConfig;
}

export interface FederationConfig {
  remotes: RemoteDatacenter[];
  /** Sent as `Authorization: Bearer` to every remote DC without a token of its own (`--federate-token-file`, `$BEACON_FEDERATE_TOKEN`). */
  token?: string;
  /** Trust for `https://` remote servers (PEM contents; `--ca`). */
  tls?: TlsOptions;
  /** Per-service failover policies (`--failover web=nearest:2`). */
  failover?: Record<string, FailoverPolicy>;
  /** RTT pings. Default 5 s. */
  pingIntervalMs?: number;
  /** Pings and forwarded requests; beyond it the remote counts unreachable. Default 5 s. */
  timeoutMs?: number;
  /** A remote stream silent this long is dead (servers ping every 15 s). Default 45 s. */
  idleTimeoutMs?: number;
}

/** PEM contents (not file names): the CLI reads `--tls-cert`, `--tls-key` and `--tls-ca`. */
export interface HttpTlsConfig {
  cert: string | Buffer;
  key: string | Buffer;
  /** CA certificate(s) that client certificates must be signed by. */
  ca?: string | Buffer;
  /** Refuse clients without a certificate signed by `ca` (`--verify-incoming`). */
  verifyIncoming?: boolean;
}

export interface RunningServer {
  httpUrl: string;
  httpAddress: AddressInfo;
  app: FastifyInstance;
  registry: Registry;
  catalog: CatalogView;
  /** This server's datacenter and the remote ones it follows. */
  federation: Federation;
  store: Store;
  deps: ApiDeps;
  /** Clustered mode (an etcd store): membership and ownership as this server sees them. */
  cluster?: ClusterInfo;
  /** Where the DNS interface listens, when it runs (`tls`: DNS over TLS, when configured). */
  dnsAddress?: { udp: AddressInfo; tcp: AddressInfo; tls?: AddressInfo };
  /** Starts the audit log file afresh at its path (SIGHUP, after logrotate moved it); nothing without `auditLog`. */
  reopenAuditLog(): void;
  /** Where the xDS server listens, when it runs. */
  xdsAddress?: { host: string; port: number };
  /** Stops taking requests, ends watches, stops timers and closes the store. */
  close(): Promise<void>;
}

/** The server's composition root: store → catalog view → registry → HTTP. */
export async function startServer(config: ServerConfig = {}): Promise<RunningServer> {
  const clock = config.clock ?? systemClock;
  const random = config.random ?? systemRandom;
  const logger = config.logger;
  const node = config.nodeName ?? hostname();
  // Settings first: a bad one must fail before anything is opened or bound.
  const httpAddr = config.httpAddr ?? '127.0.0.1:8500';
  const { host, port } = parseHostPort(httpAddr, 'HTTP address');
  const datacenter = (config.datacenter ?? (config.consul || undefined)?.datacenter ?? (config.dns || undefined)?.datacenter ?? 'dc1').toLowerCase();
  assertDatacenterName(datacenter);
  const dnsConfig = config.dns ? parseDnsConfig({ ...config.dns, datacenter }) : undefined;
  const xdsAt = config.xds ? parseHostPort(config.xds.addr, 'xDS address') : undefined;
  if (config.tls?.verifyIncoming && !config.tls.ca) throw errors.invalid('verifying client certificates needs the CA that signs them (--tls-ca)');
  if (dnsConfig?.tlsAddr && !config.tls) throw errors.invalid('DNS over TLS serves the HTTP API\'s certificate: give --tls-cert and --tls-key');
  const insecureOpen = config.insecureOpen ?? false;
  const warnings = checkExposure(
    openListeners([
      { listener: 'http', host, port },
      ...(dnsConfig ? [{ listener: 'dns' as const, host: dnsConfig.host, port: dnsConfig.port }] : []),
      ...(dnsConfig?.tlsAddr ? [{ listener: 'dns' as const, ...dnsConfig.tlsAddr }] : []),
      ...(xdsAt ? [{ listener: 'xds' as const, ...xdsAt }] : []),
    ]),
    insecureOpen,
    config.acl === true,
  );
  for (const w of warnings) logger?.warn({ insecureOpen }, `INSECURE: ${w}`);
  const storeAccess = { ...(config.storeTls ? { tls: config.storeTls } : {}), ...(config.storeAuth ? { auth: config.storeAuth } : {}) };
  let store =
    config.store ??
    (config.storeUrl ? await openStoreUrl(config.storeUrl, { clock, random, ...(config.storeWaitMs !== undefined ? { connectTimeoutMs: config.storeWaitMs } : {}), ...storeAccess }) : undefined);
  if (!store) {
    let path = ':memory:';
    if (!config.dev) {
      const dir = config.dataDir ?? './beacon-data';
      mkdirSync(dir, { recursive: true });
      path = join(dir, 'beacon.db');
    }
    // The store's own history only has to cover the catalog's lag behind it (clients resume from the
    // catalog's history), so it is kept short: a long one would hold every record twice in memory.
    store = await openEmbeddedStore({ path, clock, historySize: 10_000 });
  }
  const rawStore = store;
  const catalog = new CatalogView({ store, clock, ...(config.historySize ? { historySize: config.historySize } : {}), ...(config.historyBytes ? { historyBytes: config.historyBytes } : {}), ...(logger ? { logger } : {}) });
  await catalog.start();
  const metrics = new ServerMetrics(catalog, { build: { version: VERSION, commit: config.commit ?? 'unknown' } });
  metrics.sizeStoreWith(() => rawStore.sizeBytes());
  // Every writer below (registry, KV, compat, membership) goes through the timed store.
  store = meteredStore(store, (s) => metrics.storeCommit.observe(s));
  // Every server follows the ACL state in the store, so a token made on one works on all of them.
  const aclState = config.acl ? new AclState({ store, clock, ...(logger ? { logger } : {}) }) : undefined;
  const aclAdmin = aclState ? new AclAdmin({ store, state: aclState, clock }) : undefined;
  if (aclState && aclAdmin) {
    try {
      await aclState.start();
      await aclAdmin.ensureBuiltins();
    } catch (err) {
      await aclState.close();
      await catalog.close();
      await store.close();
      throw err;
    }
  }
  // Several servers over etcd: shared work (active checks, instance timers) is split by ownership.
  const membership = store.kind === 'etcd' ? new Membership({ store, clock, node, version: VERSION, ...(config.cluster?.memberTtlMs ? { ttlMs: config.cluster.memberTtlMs } : {}), logger }) : undefined;
  // Self-preservation counts the renewals one server sees; in a cluster heartbeats go to any server,
  // so it would take the others' instances for lost leases. Off in clustered mode (docs/clustering.md).
  const preservation =
    config.selfPreservation === false || membership ? undefined : new SelfPreservation({ clock, ...(logger ? { logger } : {}), ...config.selfPreservation });
  // After a restart every lease gets a full TTL again; count them from now.
  preservation?.retrack(instanceLeases(catalog));
  preservation?.start();
  // Filled once bound: checks may not call this server itself (e.g. PUT into its own /v1/kv).
  const ownListeners: Listener[] = [];
  const policy = new CheckTargetPolicy({ allow: config.checkAllow ?? [], enableScriptChecks: config.enableScriptChecks ?? false, ownListeners: () => ownListeners });
  // Clustered mode: instances share one etcd lease per (server, TTL bucket), their deadlines kept
  // by the server that owns them, so a heartbeat is no etcd call (docs/clustering.md).
  const sharedLeases = membership ? new SharedLeases({ store, clock, catalog, membership, logger }) : undefined;
  const registry = new Registry({
    store: preservation ? preservation.wrap(store) : store,
    catalog,
    clock,
    nodeName: node,
    // Agent-registered checks run on the agent's host, not here: the server never probes them.
    checkPolicy: (reg, scope) => {
      if (reg.spec.source !== 'agent') policy.assertRegistration(reg, scope);
    },
    ...(logger ? { logger } : {}),
    ...(config.initialCheckStatus ? { initialCheckStatus: config.initialCheckStatus } : {}),
    ...(membership ? { owns: (id: string) => membership.owns(id), relayTtlReport: (checkId: string) => relay!.relay(checkId) } : {}),
    ...(sharedLeases ? { leases: sharedLeases } : {}),
  });
  const relay = membership ? new TtlReportRelay({ store, clock, membership, reported: (id) => registry.ttlReportedElsewhere(id), logger }) : undefined;
  registry.start();
  const runners = new CheckRunners({ clock, dial: new CheckDialer(policy).dial, enableScriptChecks: config.enableScriptChecks ?? false });
  const activeChecks = new ActiveChecks({
    catalog,
    registry,
    clock,
    random,
    runners,
    ...(config.maxChecksInFlight ? { maxInFlight: config.maxChecksInFlight } : {}),
    ...(config.flapDamping !== undefined ? { damping: config.flapDamping } : {}),
    ...(logger ? { logger } : {}),
    ...(membership ? { owns: (checkId: string) => membership.owns(checkId) } : {}),
    onResult: (_id, result, _timing, kind) => metrics.checkRan(kind, result.status, result.durationMs),
  });
  activeChecks.start();
  membership?.onChange(() => {
    registry.rebalance();
    activeChecks.rebalance();
  });
  const fed = config.federation;
  const federation = new Federation({
    local: { name: datacenter, catalog },
    remotes: fed?.remotes ?? [],
    failover: new Map(Object.entries(fed?.failover ?? {})),
    // RTTs on loopback and in one region are below a millisecond: measured with sub-millisecond time.
    clock: config.clock ?? preciseClock,
    random,
    ...(fed?.token ? { token: fed.token } : {}),
    ...(fed?.tls ? { tls: fed.tls } : {}),
    ...(fed?.pingIntervalMs ? { pingIntervalMs: fed.pingIntervalMs } : {}),
    ...(fed?.timeoutMs ? { timeoutMs: fed.timeoutMs } : {}),
    ...(fed?.idleTimeoutMs ? { idleTimeoutMs: fed.idleTimeoutMs } : {}),
    ...(logger ? { logger } : {}),
  });
  const queries = new PreparedQueries({ store, clock, random, ...(logger ? { logger } : {}) });
  await queries.start();
  // Set once the DNS sockets are bound, cleared when they close: /readyz reports it.
  let dnsListening = false;
  let xdsListening = false;
  // The caps it came to are logged by whoever reports the server ready (the CLI's ready line).
  const limits = new RequestLimits(clock, config.limits);
  const deps: ApiDeps = {
    registry,
    catalog,
    store,
    clock,
    random,
    metrics,
    limits,
    activeChecks,
    federation,
    queries,
    info: { version: VERSION, storeKind: store.kind, startedAt: clock.now(), node, insecureOpen, warnings, datacenter, acl: aclState !== undefined },
    acl: aclState ?? ACL_OFF,
    ...(aclAdmin ? { aclAdmin } : {}),
    listeners: () => [
      { name: 'http', listening: app.server.listening },
      ...(dnsConfig ? [{ name: 'dns', listening: dnsListening }] : []),
      ...(xds ? [{ name: 'xds', listening: xdsListening }] : []),
    ],
    ...(membership ? { cluster: membership } : {}),
    // A restore gave every lease a full TTL again, as a restart does; and it replaced the ACL
    // state with the snapshot's, which may lack the built-ins (a snapshot of a server without --acl).
    ...(preservation || aclAdmin
      ? {
          snapshotRestored: async () => {
            preservation?.retrack(instanceLeases(catalog));
            await aclAdmin?.ensureBuiltins();
          },
        }
      : {}),
  };
  const audit = config.auditLog ? new AuditFile(config.auditLog, clock, (err) => logger?.error({ err, path: config.auditLog }, 'audit log write failed')) : undefined;
  const xds = config.xds ? new XdsServer({ catalog, clock, addr: config.xds.addr, ...(aclState ? { acl: aclState } : {}), ...(audit ? { audit } : {}), ...(config.xds.coalesceMs !== undefined ? { coalesceMs: config.xds.coalesceMs } : {}), ...(logger ? { logger } : {}) }) : undefined;
  const plugins: NonNullable<HttpAppOptions['plugins']> = [
    ...(xds ? [xdsPlugin(xds)] : []),
    ...(membership ? [clusterPlugin(membership)] : []),
    ...(preservation ? [selfPreservationPlugin(preservation)] : []),
    ...(config.consul === false
      ? []
      : [consulPlugin({ ...(preservation ? { stats: () => ({ self_preservation: statsOf(preservation) }) } : {}), ...config.consul, datacenter })]),
    ...(config.eureka === false ? [] : [eurekaPlugin(config.eureka)]),
    ...(config.ui === false ? [] : [uiPlugin(config.ui ?? { dir: builtUiDir() })]),
    ...(config.plugins ?? []),
  ];
  const app = await buildHttpApp(deps, { ...(logger ? { logger } : {}), ...(audit ? { audit } : {}), plugins, ...(config.httpTimeouts ? { timeouts: config.httpTimeouts } : {}), ...(config.tls ? { tls: config.tls } : {}) });
  // Everything below the HTTP front end, stopped in dependency order (also when start-up fails).
  const stopCore = async () => {
    await federation.close();
    await queries.close();
    preservation?.close();
    await activeChecks.close();
    await runners.close();
    registry.close();
    await aclState?.close();
    await catalog.close();
    await store.close();
    await audit?.close();
  };
  try {
    await app.listen({ host, port });
  } catch (err) {
    // The app first: its plugins (the compat mirrors) watch the store, and a store closed under
    // a running watch reads as a failure to them, not as the teardown it is.
    await app.close();
    await stopCore();
    throw listenFailed('http', httpAddr, err);
  }
  const httpAddress = app.server.address() as AddressInfo;
  ownListeners.push(httpAddress);
  const httpUrl = serverUrl(app.server, httpAddress.address, httpAddress.port);
  const dotCredentials = dnsConfig?.tlsAddr && config.tls ? { tls: { cert: config.tls.cert, key: config.tls.key } } : {};
  const dnsFederation: DnsFederation = {
    remote: (dc) => {
      const view = federation.remoteView(dc);
      return view?.synced ? view : undefined;
    },
    query: (name) => {
      const q = queries.resolve(name);
      if (!q) return undefined;
      const a = executeQuery(federation, q);
      return { service: q.service, datacenter: a.datacenter, instances: a.instances, ttl: q.dnsTtlS };
    },
  };
  // DNS carries no token: with ACLs on it answers what the anonymous token may read, in this DC,
  // in the others and through prepared queries alike.
  const dnsCatalog = dnsConfig && aclState ? new AnonymousDnsCatalog(catalog, aclState) : undefined;
  const dns = dnsConfig ? createDnsServer({ catalog: dnsCatalog ?? catalog, federation: dnsCatalog?.federation(dnsFederation) ?? dnsFederation, config: dnsConfig, random, clock, ...(logger ? { logger } : {}), ...dotCredentials }) : undefined;
  let dnsAddress: RunningServer['dnsAddress'];
  try {
    dnsAddress = await dns?.listen();
    if (dns) metrics.countDnsFrom(() => dns.counts());
    if (dnsAddress) ownListeners.push(dnsAddress.tcp, ...(dnsAddress.tls ? [dnsAddress.tls] : []));
    dnsListening = dnsAddress !== undefined;
  } catch (err) {
    await app.close();
    await stopCore();
    throw listenFailed('dns', formatHostPort(dnsConfig!.host, dnsConfig!.port), err);
  }
  let xdsAddress: RunningServer['xdsAddress'];
  try {
    xdsAddress = await xds?.listen();
    xdsListening = xdsAddress !== undefined;
  } catch (err) {
    await dns?.close();
    await app.close();
    await stopCore();
    throw listenFailed('xds', config.xds!.addr, err);
  }
  // Remote DCs are followed once this server serves: a slow or absent one never delays its start.
  federation.start();
  await relay?.start();
  await sharedLeases?.start();
  await membership?.start(httpUrl);
  let closing: Promise<void> | undefined;
  return {
    httpUrl,
    httpAddress,
    app,
    registry,
    catalog,
    federation,
    // The store itself (tests reach its implementation), not the timed view the writers use.
    store: rawStore,
    deps,
    ...(membership ? { cluster: membership } : {}),
    ...(dnsAddress ? { dnsAddress } : {}),
    reopenAuditLog: () => audit?.reopen(),
    ...(xdsAddress ? { xdsAddress } : {}),
    close() {
      closing ??= (async () => {
        dnsListening = false;
        xdsListening = false;
        await xds?.close();
        await dns?.close();
        dnsCatalog?.close();
        await app.close();
        // Leave first: the others take over this server's share at once, not at its lease expiry.
        await membership?.close();
        await relay?.close();
        await sharedLeases?.close();
        await stopCore();
      })();
      return closing;
    },
  };
}

function* instanceLeases(catalog: CatalogView): Iterable<{ id: number; ttlMs: number }> {
  for (const s of catalog.services()) for (const i of catalog.service(s.name).instances) if (i.ttlMs) yield { id: catalog.leaseOf(i.id), ttlMs: i.ttlMs };
}

function statsOf(p: SelfPreservation): Record<string, string> {
  const s = p.status();
  return { active: String(s.active), leases: String(s.leases), at_risk: String(s.atRisk), share: String(s.share), threshold: String(s.threshold) };
}
