import { defaultLogFormat, LOG_FORMATS, stdoutLogger, type LogFormat } from '../logger.js';
import type { HttpTlsConfig, ListenerName, RunningServer, ServerConfig } from '@beacon/server';
import { BeaconError, parseFailoverFlags, TTL_BOUNDS, type CheckStatus } from '@beacon/core';
import { CommanderError, InvalidArgumentError, Option, type Command } from 'commander';
import { applyConfigFile, effectiveConfigYaml, effectiveSettings, recordRawValues } from '../config-file.js';
import { collect, duration, integer, listenAddress, pemFile, secretFile, ttlSeconds } from '../flags.js';
import { buildCommit } from '../commit.js';
import { setFlagsFromString } from 'node:v8';
import { clientTls, type GlobalOptions } from '../connection.js';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error'] as const;
const CHECK_STATUSES: readonly CheckStatus[] = ['passing', 'warning', 'critical'];

/** The flag that chose each listening address: what to change when it cannot be had. */
function addressFlag(listener: ListenerName): string {
  switch (listener) {
    case 'http':
      return '--http-addr';
    case 'dns':
      return '--dns-addr';
    case 'xds':
      return '--xds-addr';
  }
}

/** The HTTPS settings the flags give, or undefined for plain HTTP; half a setting is a usage error. */
function serverTls(flags: ServerFlags, httpAddrAsTyped: unknown): HttpTlsConfig | undefined {
  const { tlsCert: cert, tlsKey: key, tlsCa: ca, verifyIncoming } = flags;
  if (!cert !== !key) throw new InvalidArgumentError('--tls-cert and --tls-key go together.');
  // One BEACON_HTTP_ADDR serves the server and its clients: an https:// one must not come up plaintext.
  if (!cert && typeof httpAddrAsTyped === 'string' && /^https:/i.test(httpAddrAsTyped)) throw new InvalidArgumentError(`--http-addr ${httpAddrAsTyped} is https:// but no --tls-cert and --tls-key are given.`);
  if (verifyIncoming && !ca) throw new InvalidArgumentError('--verify-incoming needs --tls-ca, the CA that signs the client certificates.');
  if (!cert || !key) {
    if (ca || verifyIncoming) throw new InvalidArgumentError('--tls-ca and --verify-incoming need --tls-cert and --tls-key (HTTPS).');
    if (flags.dnsTlsAddr) throw new InvalidArgumentError('--dns-tls-addr needs --tls-cert and --tls-key (DNS over TLS serves that certificate).');
    return undefined;
  }
  return { cert, key, ...(ca ? { ca } : {}), ...(verifyIncoming ? { verifyIncoming: true } : {}) };
}

/** How the server reaches a TLS or password-protected etcd; half a setting is a usage error. */
function storeAccess(flags: ServerFlags, env = process.env): Pick<ServerConfig, 'storeTls' | 'storeAuth'> {
  const { storeCa: ca, storeCert: cert, storeKey: key, storeUser: username } = flags;
  // From the environment only: a flag is visible to every user of the host (ps), and a setting
  // would be printed by --print-config.
  const password = username ? env.BEACON_STORE_PASSWORD : undefined;
  if (!cert !== !key) throw new InvalidArgumentError('--store-cert and --store-key go together.');
  if ((ca || cert) && !/^\s*etcds:\/\//.test(flags.store ?? '')) throw new InvalidArgumentError('--store-ca, --store-cert and --store-key need an etcds:// --store URL.');
  if (username && !password) throw new InvalidArgumentError('--store-user needs its password in BEACON_STORE_PASSWORD.');
  if (username && !flags.store) throw new InvalidArgumentError('--store-user needs --store (clustered mode).');
  return {
    ...(ca || cert ? { storeTls: { ...(ca ? { ca } : {}), ...(cert && key ? { cert, key } : {}) } } : {}),
    ...(username && password ? { storeAuth: { username, password } } : {}),
  };
}

export interface ServerFlags {
  dev?: boolean;
  dataDir: string;
  httpAddr: string;
  /** PEM contents of the files named by --tls-cert, --tls-key, --tls-ca. */
  tlsCert?: Buffer;
  tlsKey?: Buffer;
  tlsCa?: Buffer;
  verifyIncoming?: boolean;
  node?: string;
  logLevel: string;
  logFormat?: LogFormat;
  config?: string;
  printConfig?: boolean;
  initialCheckStatus?: CheckStatus;
  checkAllow?: string[];
  enableScriptChecks?: boolean;
  store?: string;
  storeCa?: Buffer;
  storeCert?: Buffer;
  storeKey?: Buffer;
  storeUser?: string;
  /** Milliseconds. */
  memberTtl: number;
  /** Milliseconds. */
  storeWait: number;
  datacenter: string;
  /** `NAME=URL[,URL…]`, repeatable. */
  federate?: string[];
  /** The token read from --federate-token-file. */
  federateTokenFile?: string;
  /** Milliseconds. */
  federateTimeout: number;
  /** Milliseconds. */
  federatePingInterval: number;
  /** `SERVICE=POLICY`, repeatable. */
  failover?: string[];
  dns: boolean;
  /** Serve the web UI at /ui (`--no-ui` turns it off). */
  ui: boolean;
  dnsAddr: string;
  dnsTlsAddr?: string;
  dnsDomain?: string;
  dnsDatacenter?: string;
  dnsOnlyPassing?: boolean;
  dnsServiceTtl?: string;
  /** Seconds. */
  dnsNodeTtl?: number;
  /** Seconds. */
  dnsNegativeTtl?: number;
  dnsRecursor?: string;
  dnsUdpProcesses?: number;
  dnsTcpMaxConnections?: number;
  dnsTcpMaxConnectionsPerClient?: number;
  /** Milliseconds. */
  dnsTcpIdleTimeout?: number;
  /** Milliseconds. */
  dnsTcpFrameTimeout?: number;
  dnsRrlRate?: number;
  dnsRrlSlip?: number;
  xdsAddr?: string;
  insecureOpen?: boolean;
  auditLog?: string;
  historyBytes?: number;
  acl?: boolean;
  kvMaxBytes?: number;
  sessionsPerClient?: number;
  limitWriteRate?: number;
  limitWriteBurst?: number;
  limitWatchRate?: number;
  limitWatchBurst?: number;
  limitWatchesPerClient?: number;
  limitBlockingPerClient?: number;
  limitTokenWriteRate?: number;
  limitTokenWriteBurst?: number;
  limitTokenWatchRate?: number;
  limitTokenWatchBurst?: number;
  maxWatchStreams?: number;
  maxBlockingQueries?: number;
  /** Milliseconds. */
  httpHeadersTimeout?: number;
  /** Milliseconds. */
  httpRequestTimeout?: number;
  /** Milliseconds. */
  httpKeepaliveTimeout?: number;
}

const PER_S = integer(0, 1_000_000_000);
const COUNT = integer(0, 10_000_000);
const HTTP_TIMEOUT = duration({ minMs: 1, maxMs: 3_600_000 });

/** The request-limit flags as the server's settings: only those given, so the server's defaults hold otherwise. */
function limitSettings(f: ServerFlags) {
  const picked = {
    writeRate: f.limitWriteRate,
    writeBurst: f.limitWriteBurst,
    watchRate: f.limitWatchRate,
    watchBurst: f.limitWatchBurst,
    watchesPerClient: f.limitWatchesPerClient,
    blockingPerClient: f.limitBlockingPerClient,
    tokenWriteRate: f.limitTokenWriteRate,
    tokenWriteBurst: f.limitTokenWriteBurst,
    tokenWatchRate: f.limitTokenWatchRate,
    tokenWatchBurst: f.limitTokenWatchBurst,
    maxWatchStreams: f.maxWatchStreams,
    maxBlockingQueries: f.maxBlockingQueries,
  };
  const timeouts = { headersMs: f.httpHeadersTimeout, requestMs: f.httpRequestTimeout, keepAliveMs: f.httpKeepaliveTimeout };
  return { limits: definedOnly(picked), httpTimeouts: definedOnly(timeouts) };
}

/** The caps on open streams and parked queries after fitting them to the descriptor limit. */
function watchCaps(server: RunningServer) {
  const e = server.deps.limits.effective;
  return { maxWatchStreams: e.watchStreams, maxBlockingQueries: e.blockingQueries, nofile: e.nofileKnown ? e.nofile : `unknown (assumed ${e.nofile})` };
}

function definedOnly<T extends Record<string, number | undefined>>(o: T): { [K in keyof T]?: number } {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as { [K in keyof T]?: number };
}

/** `beacon server`: the composition root of a server process, with signal handling. */
export function serverCommand(program: Command): void {
  const cmd = program
    .command('server')
    .description('run a Beacon server (embedded store by default)')
    .addOption(new Option('--config <file>', 'read settings from this YAML or JSON file (keys: these flags without --; flags and env override it)').env('BEACON_CONFIG'))
    .option('--print-config', 'print the effective settings as YAML (a list with --json), with where each came from, and exit')
    .option('--dev', 'keep everything in memory; nothing is written to disk')
    .addOption(new Option('--data-dir <dir>', 'directory of the embedded store').default('./beacon-data').env('BEACON_DATA_DIR'))
    .addOption(new Option('--store <url>', 'clustered mode: etcd://host:port,host:port,…[/prefix] on every server (instead of the embedded store); etcds:// for TLS').env('BEACON_STORE'))
    .addOption(new Option('--store-ca <file>', 'etcds://: CA certificate (PEM) of the etcd members (default: the system\'s CAs)').argParser(pemFile))
    .addOption(new Option('--store-cert <file>', 'etcds://: client certificate (PEM), for etcd run with --client-cert-auth').argParser(pemFile))
    .addOption(new Option('--store-key <file>', 'etcds://: private key (PEM) of --store-cert').argParser(pemFile))
    .addOption(new Option('--store-user <name>', 'etcd user, for etcd with auth enabled (password: $BEACON_STORE_PASSWORD)').env('BEACON_STORE_USER'))

    .addOption(
      new Option('--store-wait <duration>', 'clustered mode: how long to wait at start for etcd to answer').argParser(duration({ minMs: 0, maxMs: 3_600_000 })).default(10_000, '10s'),
    )
    .addOption(
      new Option('--member-ttl <duration>', 'clustered mode: how long a dead server keeps its share of the checks (min 2s)')
        .argParser(duration({ minMs: 2_000, maxMs: TTL_BOUNDS.maxMs }))
        .default(3_000, '3s'),
    )
    .option('--acl', 'access control: deny by default; requests need a token (bootstrap with `beacon acl bootstrap`); allows non-loopback addresses')
    .option('--insecure-open', 'allow a non-loopback --http-addr, --dns-addr or --xds-addr (0.0.0.0, ::, a LAN address) without --acl')
    .addOption(new Option('--http-addr <host:port>', 'HTTP API address').argParser(listenAddress).default('127.0.0.1:8500').env('BEACON_HTTP_ADDR'))
    .addOption(new Option('--tls-cert <file>', 'serve the HTTP API over HTTPS only (TLS 1.2+) with this certificate (PEM; with --tls-key)').argParser(pemFile))
    .addOption(new Option('--tls-key <file>', 'private key (PEM) of --tls-cert').argParser(pemFile))
    .addOption(new Option('--tls-ca <file>', 'CA certificate (PEM) that client certificates must be signed by (with --verify-incoming)').argParser(pemFile))
    .option('--verify-incoming', 'refuse HTTPS clients without a certificate signed by --tls-ca')
    .addOption(new Option('--datacenter <name>', 'datacenter this server answers for (DNS names, Consul API)').default('dc1').env('BEACON_DATACENTER'))
    .option('--federate <name=urls>', 'follow remote datacenter NAME through its servers: dc2=https://10.0.2.1:8500[,https://…] (repeatable; --ca for https)', collect)
    .addOption(
      new Option('--federate-token-file <file>', 'file whose first line is sent to remote datacenters as Authorization: Bearer (else $BEACON_FEDERATE_TOKEN)').argParser(secretFile),
    )
    .addOption(
      new Option('--federate-timeout <duration>', 'a remote ping or forwarded request unanswered this long counts the DC unreachable').argParser(duration({ minMs: 10, maxMs: 600_000 })).default(5_000, '5s'),
    )
    .addOption(
      new Option('--federate-ping-interval <duration>', 'how often remote servers are pinged to measure round-trip times').argParser(duration({ minMs: 100, maxMs: 3_600_000 })).default(5_000, '5s'),
    )
    .option('--failover <service=policy>', 'when SERVICE has no ready instance here, answer from other DCs: web=nearest:2 or web=dc2,dc3 (repeatable)', collect)
    .addOption(new Option('--node <name>', 'node name for instances that name none (default: host name)').env('BEACON_NODE'))
    .addOption(new Option('--initial-check-status <status>', 'status of new checks until their first result (default critical)').choices(CHECK_STATUSES))
    .option('--check-allow <cidr>', 'let active checks target this range besides the instance itself (repeatable)', collect)
    .option('--enable-script-checks', 'run script checks (argv, no shell); refused otherwise')
    .addOption(new Option('--dns-addr <host:port>', 'DNS address, UDP and TCP').default('127.0.0.1:8600').env('BEACON_DNS_ADDR'))
    .option('--dns-tls-addr <host:port>', 'also serve DNS over TLS (RFC 7858) here, with the --tls-cert certificate')
    .option('--no-dns', 'do not serve DNS')
    .option('--no-ui', 'do not serve the web UI at /ui (nor redirect / there)')
    .option('--dns-domain <domain>', 'zone Beacon answers for (default consul.)')
    // The old name of --datacenter, kept working for scripts that use it.
    .addOption(new Option('--dns-datacenter <name>', 'deprecated: use --datacenter').hideHelp())
    .option('--dns-only-passing', 'leave instances with warning checks out of DNS answers')
    .option('--dns-service-ttl <rules>', 'answer TTLs: web=30s,api-*=10s,*=5s (default 0)')
    .option('--dns-node-ttl <duration>', 'TTL of node and addr records: seconds or a duration (default 0)', ttlSeconds)
    .option('--dns-negative-ttl <duration>', 'SOA minimum, how long NXDOMAIN may be cached: seconds or a duration (default 0)', ttlSeconds)
    .option('--dns-recursor <host[:port]>', 'forward names outside the domain here (else REFUSED)')
    .option('--dns-udp-processes <n>', 'processes reading the UDP socket (1-16, default 1)', integer(1, 16))
    .option('--dns-tcp-max-connections <n>', 'DNS TCP connections open at once (default 256)', integer(1, 1_000_000))
    .option('--dns-tcp-max-connections-per-client <n>', '… from one IPv4 address or IPv6 /64 (default 16)', integer(1, 1_000_000))
    .option('--dns-tcp-idle-timeout <duration>', 'close a DNS TCP connection idle this long between queries (default 10s)', duration({ minMs: 1, maxMs: 3_600_000 }))
    .option('--dns-tcp-frame-timeout <duration>', 'close a DNS TCP connection whose query takes longer to arrive (default 2s)', duration({ minMs: 1, maxMs: 3_600_000 }))
    .option('--dns-rrl-rate <n>', 'UDP responses per second to one IPv4 /24 or IPv6 /56, per UDP process (default 0: no limit)', integer(0, 1_000_000))
    .option('--dns-rrl-slip <n>', 'send every nth rate-limited response as an empty TC reply, drop the rest; 0 drops all (default 2)', integer(0, 10))
    .option('--audit-log <file>', 'append a JSON line per write and per refused request (401/403) on every API to this file; reopened on SIGHUP')
    .option('--history-bytes <n>', 'estimated bytes the change history may keep (check outputs included); the oldest entries go first (default 67108864, 64 MiB)', integer(1024, Number.MAX_SAFE_INTEGER))
    .addOption(new Option('--xds-addr <host:port>', 'serve xDS (ADS v3) for proxyless gRPC and Envoy here (default: off; docs/xds.md)').env('BEACON_XDS_ADDR'))
    .option('--kv-max-bytes <n>', 'bytes of keys and values the KV store may hold; writes past it get 413 (default 268435456, 256 MiB)', integer(1, Number.MAX_SAFE_INTEGER))
    .option('--sessions-per-client <n>', 'Consul sessions one client IP may hold; 0: no cap (default 256)', COUNT)
    .option('--limit-write-rate <n>', 'writes (PUT/POST/PATCH/DELETE, every API) per second from one client IP; 0: no limit (default 1000)', PER_S)
    .option('--limit-write-burst <n>', 'writes one client IP may send at once above the rate (default 2000)', integer(1, 1_000_000_000))
    .option('--limit-watch-rate <n>', 'watches opened (SSE, parked blocking queries) per second from one client IP; 0: no limit (default 100)', PER_S)
    .option('--limit-watch-burst <n>', 'watches one client IP may open at once above the rate (default 200)', integer(1, 1_000_000_000))
    .option('--limit-watches-per-client <n>', 'SSE streams open from one client IP; 0: no cap (default 64)', COUNT)
    .option('--limit-blocking-per-client <n>', 'blocking queries parked from one client IP, native and Consul; 0: no cap (default 64)', COUNT)
    .option('--limit-token-write-rate <n>', 'with --acl: writes per second with one token, from any address; 0: no limit (default 2000)', PER_S)
    .option('--limit-token-write-burst <n>', 'writes one token may send at once above the rate (default 4000)', integer(1, 1_000_000_000))
    .option('--limit-token-watch-rate <n>', 'with --acl: watches opened per second with one token; 0: no limit (default 200)', PER_S)
    .option('--limit-token-watch-burst <n>', 'watches one token may open at once above the rate (default 400)', integer(1, 1_000_000_000))
    .option('--max-watch-streams <n>', 'SSE streams open in all, lowered to fit the descriptor limit (default 20000)', integer(1, 10_000_000))
    .option('--max-blocking-queries <n>', 'blocking queries parked in all, lowered to fit the descriptor limit (default 50000)', integer(1, 10_000_000))
    .option('--http-headers-timeout <duration>', 'close a connection whose request headers take longer (default 10s)', HTTP_TIMEOUT)
    .option('--http-request-timeout <duration>', 'close a connection whose whole request takes longer to arrive; answers and streams are not cut (default 30s)', HTTP_TIMEOUT)
    .option('--http-keepalive-timeout <duration>', 'close a keep-alive connection idle this long between requests (default 65s)', HTTP_TIMEOUT)
    .addOption(new Option('--log-level <level>', 'log level').choices(LOG_LEVELS).default('info').env('BEACON_LOG_LEVEL'))
    .addOption(new Option('--log-format <format>', 'log lines as pretty text or JSON (default: pretty on a terminal, else json)').choices(LOG_FORMATS).env('BEACON_LOG_FORMAT'));
  // Neither is a setting of the server: a file naming another file, or asking to print itself, is a mistake.
  const notInFile = ['config', 'print-config'] as const;
  const raw = recordRawValues(cmd);
  cmd
    .hook('preAction', () => {
      const file = cmd.getOptionValue('config') as string | undefined;
      if (file) applyConfigFile(cmd, file, raw, notInFile);
    })
    .action(async (flags: ServerFlags) => {
      if (flags.printConfig) {
        const json = cmd.optsWithGlobals<{ json?: boolean }>().json;
        process.stdout.write(json ? JSON.stringify(effectiveSettings(cmd, raw, notInFile), null, 2) + '\n' : effectiveConfigYaml(cmd, raw, notInFile));
        return;
      }
      const tls = serverTls(flags, raw.get('httpAddr'));
      const storeSecurity = storeAccess(flags);
      const logger = stdoutLogger(flags.logLevel, 'beacon', flags.logFormat ?? defaultLogFormat());
      const initial = flags.initialCheckStatus;
      const datacenter = flags.dnsDatacenter ?? flags.datacenter;
      if (flags.dnsDatacenter !== undefined) logger.warn('--dns-datacenter is deprecated: use --datacenter');
      // Loaded here so client commands start without the server's dependencies.
      const { startServer, isListenFailure, openListeners, openRefusal, parseHostPort, unguardedListeners } = await import('@beacon/server');
      // V8 lets the old generation grow to up to 4× what its last full collection kept before it
      // collects again; a server taking registrations promotes short-lived objects (requests, the
      // store's watch window) and sat at ~2.5× its live heap. 25 % keeps the peak close to what is
      // live, at the cost of more frequent (incremental, mostly concurrent) full collections:
      // figures in docs/benchmarks.md. Process-wide, so set here, in the server binary only; an
      // operator's own `node --heap-growing-percent=N` (0: V8's default) wins.
      if (!/--heap[-_]growing[-_]percent/.test([...process.execArgv, process.env.NODE_OPTIONS ?? ''].join(' '))) setFlagsFromString('--heap-growing-percent=25');
      // A usage error (exit 2), caught before anything is opened; startServer refuses the same way.
      const open = openListeners([
        { listener: 'http', ...parseHostPort(flags.httpAddr, 'HTTP address') },
        ...(flags.dns ? [{ listener: 'dns' as const, ...parseHostPort(flags.dnsAddr, 'DNS address') }] : []),
        ...(flags.xdsAddr ? [{ listener: 'xds' as const, ...parseHostPort(flags.xdsAddr, 'xDS address') }] : []),
      ]);
      const unguarded = unguardedListeners(open, !!flags.acl);
      if (unguarded.length > 0 && !flags.insecureOpen) throw new CommanderError(2, 'beacon.insecure', openRefusal(unguarded));
      let node = flags.node;
      if (flags.store && !node) {
        // Servers of a cluster need distinct names, and several may share a host.
        const { hostname } = await import('node:os');
        node = `${hostname()}-${flags.httpAddr.slice(flags.httpAddr.lastIndexOf(':') + 1)}`;
      }
      const commit = buildCommit();
      const { parseFederate } = await import('@beacon/server');
      const remotes = parseFederate(flags.federate ?? [], datacenter.toLowerCase());
      let failover: ReturnType<typeof parseFailoverFlags>;
      try {
        failover = parseFailoverFlags(flags.failover ?? []);
      } catch (err) {
        throw new InvalidArgumentError((err as Error).message); // a bad flag: exit 2
      }
      const fedTls = clientTls(cmd.optsWithGlobals<GlobalOptions>());
      // From a file or the environment only: a flag's value is visible to every user of the host
      // (ps), and a setting would be printed by --print-config.
      const federateToken = flags.federateTokenFile ?? process.env.BEACON_FEDERATE_TOKEN;
      const config: Parameters<typeof startServer>[0] = {
        ...(flags.dev ? { dev: true } : {}),
        ...(flags.store ? { storeUrl: flags.store, storeWaitMs: flags.storeWait, cluster: { memberTtlMs: flags.memberTtl }, ...storeSecurity } : {}),
        dataDir: flags.dataDir,
        httpAddr: flags.httpAddr,
        ...(tls ? { tls } : {}),
        ...(node ? { nodeName: node } : {}),
        ...(commit ? { commit } : {}),
        ...(initial ? { initialCheckStatus: initial } : {}),
        ...(flags.checkAllow ? { checkAllow: flags.checkAllow } : {}),
        ...(flags.enableScriptChecks ? { enableScriptChecks: true } : {}),
        ...(flags.insecureOpen ? { insecureOpen: true } : {}),
        ...(flags.auditLog ? { auditLog: flags.auditLog } : {}),
        ...(flags.historyBytes !== undefined ? { historyBytes: flags.historyBytes } : {}),
        ...(flags.ui ? {} : { ui: false as const }),
        datacenter,
        federation: {
          remotes,
          failover,
          timeoutMs: flags.federateTimeout,
          pingIntervalMs: flags.federatePingInterval,
          ...(federateToken ? { token: federateToken } : {}),
          ...(fedTls ? { tls: fedTls } : {}),
        },
        ...(flags.acl ? { acl: true } : {}),
        consul: { datacenter, ...(flags.kvMaxBytes !== undefined ? { kvMaxBytes: flags.kvMaxBytes } : {}), ...(flags.sessionsPerClient !== undefined ? { sessionsPerClient: flags.sessionsPerClient } : {}) },
        ...limitSettings(flags),
        ...(flags.xdsAddr ? { xds: { addr: flags.xdsAddr } } : {}),
        dns: flags.dns && {
          addr: flags.dnsAddr,
          ...(flags.dnsTlsAddr ? { tlsAddr: flags.dnsTlsAddr } : {}),
          ...(flags.dnsDomain ? { domain: flags.dnsDomain } : {}),
          datacenter,
          ...(flags.dnsOnlyPassing ? { onlyPassing: true } : {}),
          ...(flags.dnsServiceTtl ? { serviceTtl: flags.dnsServiceTtl } : {}),
          ...(flags.dnsNodeTtl !== undefined ? { nodeTtl: flags.dnsNodeTtl } : {}),
          ...(flags.dnsNegativeTtl !== undefined ? { negativeTtl: flags.dnsNegativeTtl } : {}),
          ...(flags.dnsRecursor ? { recursor: flags.dnsRecursor } : {}),
          ...(flags.dnsUdpProcesses ? { udpProcesses: flags.dnsUdpProcesses } : {}),
          ...(flags.dnsTcpMaxConnections ? { tcpMaxConnections: flags.dnsTcpMaxConnections } : {}),
          ...(flags.dnsTcpMaxConnectionsPerClient ? { tcpMaxConnectionsPerClient: flags.dnsTcpMaxConnectionsPerClient } : {}),
          ...(flags.dnsTcpIdleTimeout ? { tcpIdleTimeout: flags.dnsTcpIdleTimeout } : {}),
          ...(flags.dnsTcpFrameTimeout ? { tcpFrameTimeout: flags.dnsTcpFrameTimeout } : {}),
          ...(flags.dnsRrlRate !== undefined ? { rrlRate: flags.dnsRrlRate } : {}),
          ...(flags.dnsRrlSlip !== undefined ? { rrlSlip: flags.dnsRrlSlip } : {}),
        },
        logger,
      };
      let server: RunningServer;
      try {
        server = await startServer(config);
      } catch (err) {
        // A taken port is the commonest first-run failure: say which flag picks another.
        if (err instanceof BeaconError && isListenFailure(err.details)) throw new BeaconError(err.code, `${err.message} (choose another with ${addressFlag(err.details.listener)})`);
        throw err;
      }
      logger.info(
        {
          http: server.httpUrl,
          dns: server.dnsAddress ? `${server.dnsAddress.udp.address}:${server.dnsAddress.udp.port}` : null,
          ...(server.dnsAddress?.tls ? { dnsTls: `${server.dnsAddress.tls.address}:${server.dnsAddress.tls.port}` } : {}),
          ...(server.xdsAddress ? { xds: `${server.xdsAddress.host}:${server.xdsAddress.port}` } : {}),
          store: server.store.kind, ...(flags.store ? { etcd: flags.store, node } : { dataDir: flags.dev ? null : flags.dataDir }),
          ...watchCaps(server) },
        'beacon server ready',
      );
      let stopping = false;
      const stop = (signal: string) => {
        if (stopping) return;
        stopping = true;
        logger.info({ signal }, 'shutting down: draining connections');
        const force = setTimeout(() => {
          logger.error('shutdown took too long; exiting');
          process.exit(1);
        }, 10_000);
        force.unref();
        server.close().then(
          () => {
            logger.info('stopped');
            process.exit(0);
          },
          (err: unknown) => {
            logger.error({ err }, 'error while stopping');
            process.exit(1);
          },
        );
      };
      // logrotate's postrotate sends SIGHUP: the audit log starts afresh at its path.
      if (flags.auditLog)
        process.on('SIGHUP', () => {
          logger.info({ path: flags.auditLog }, 'SIGHUP: reopening the audit log');
          server.reopenAuditLog();
        });
      process.on('SIGTERM', () => stop('SIGTERM'));
      process.on('SIGINT', () => stop('SIGINT'));
    });
}
