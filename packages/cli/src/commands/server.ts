import { pino } from 'pino';
import type { RunningServer } from '@beacon/server';
import { parseDuration, type CheckStatus } from '@beacon/core';
import type { Command } from 'commander';

export interface ServerFlags {
  dev?: boolean;
  dataDir: string;
  httpAddr: string;
  node?: string;
  logLevel: string;
  initialCheckStatus?: CheckStatus;
  checkAllow?: string[];
  enableScriptChecks?: boolean;
  store?: string;
  memberTtl?: string;
  storeWait?: string;
  dns: boolean;
  dnsAddr: string;
  dnsDomain?: string;
  dnsDatacenter?: string;
  dnsOnlyPassing?: boolean;
  dnsServiceTtl?: string;
  dnsNodeTtl?: string;
  dnsNegativeTtl?: string;
  dnsRecursor?: string;
  dnsUdpProcesses?: string;
  dnsTcpMaxConnections?: string;
  dnsTcpMaxConnectionsPerClient?: string;
  dnsTcpIdleTimeout?: string;
  dnsTcpFrameTimeout?: string;
}

/** `beacon server`: the composition root of a server process, with signal handling. */
export function serverCommand(program: Command): void {
  program
    .command('server')
    .description('run a Beacon server (embedded store by default)')
    .option('--dev', 'keep everything in memory; nothing is written to disk')
    .option('--data-dir <dir>', 'directory of the embedded store', './beacon-data')
    .option('--store <url>', 'clustered mode: etcd://host:port,host:port,…[/prefix] on every server (instead of the embedded store)')
    .option('--store-wait <duration>', 'clustered mode: how long to wait at start for etcd to answer', '10s')
    .option('--member-ttl <duration>', 'clustered mode: how long a dead server keeps its share of the checks (min 2s)', '3s')
    .option('--http-addr <host:port>', 'HTTP API address', '127.0.0.1:8500')
    .option('--node <name>', 'node name for instances that name none (default: host name)')
    .option('--initial-check-status <status>', 'status of new checks until their first result (passing|warning|critical)')
    .option('--check-allow <cidr>', 'let active checks target this range besides the instance itself (repeatable)', (v: string, p: string[] = []) => [...p, v])
    .option('--enable-script-checks', 'run script checks (argv, no shell); refused otherwise')
    .option('--dns-addr <host:port>', 'DNS address, UDP and TCP', '127.0.0.1:8600')
    .option('--no-dns', 'do not serve DNS')
    .option('--dns-domain <domain>', 'zone Beacon answers for (default consul.)')
    .option('--dns-datacenter <name>', 'datacenter label accepted in names (default dc1)')
    .option('--dns-only-passing', 'leave instances with warning checks out of DNS answers')
    .option('--dns-service-ttl <rules>', 'answer TTLs: web=30s,api-*=10s,*=5s (default 0)')
    .option('--dns-node-ttl <duration>', 'TTL of node and addr records (default 0)')
    .option('--dns-negative-ttl <duration>', 'SOA minimum: how long NXDOMAIN may be cached (default 0)')
    .option('--dns-recursor <host[:port]>', 'forward names outside the domain here (else REFUSED)')
    .option('--dns-udp-processes <n>', 'processes reading the UDP socket (default 1)')
    .option('--dns-tcp-max-connections <n>', 'DNS TCP connections open at once (default 256)')
    .option('--dns-tcp-max-connections-per-client <n>', '… from one IPv4 address or IPv6 /64 (default 16)')
    .option('--dns-tcp-idle-timeout <duration>', 'close a DNS TCP connection idle this long between queries (default 10s)')
    .option('--dns-tcp-frame-timeout <duration>', 'close a DNS TCP connection whose query takes longer to arrive (default 2s)')
    .option('--log-level <level>', 'trace|debug|info|warn|error', process.env.BEACON_LOG_LEVEL ?? 'info')
    .action(async (flags: ServerFlags) => {
      const logger = pino({ level: flags.logLevel, base: { svc: 'beacon' } });
      const initial = flags.initialCheckStatus;
      if (initial !== undefined && !['passing', 'warning', 'critical'].includes(initial)) throw new Error('--initial-check-status must be passing, warning or critical');
      // Loaded here so client commands start without the server's dependencies.
      const { startServer } = await import('@beacon/server');
      let node = flags.node;
      if (flags.store && !node) {
        // Servers of a cluster need distinct names, and several may share a host.
        const { hostname } = await import('node:os');
        node = `${hostname()}-${flags.httpAddr.slice(flags.httpAddr.lastIndexOf(':') + 1)}`;
      }
      const server: RunningServer = await startServer({
        ...(flags.dev ? { dev: true } : {}),
        ...(flags.store ? { storeUrl: flags.store, storeWaitMs: parseDuration(flags.storeWait ?? '10s'), cluster: { memberTtlMs: parseDuration(flags.memberTtl ?? '3s') } } : {}),
        dataDir: flags.dataDir,
        httpAddr: flags.httpAddr,
        ...(node ? { nodeName: node } : {}),
        ...(initial ? { initialCheckStatus: initial } : {}),
        ...(flags.checkAllow ? { checkAllow: flags.checkAllow } : {}),
        ...(flags.enableScriptChecks ? { enableScriptChecks: true } : {}),
        dns: flags.dns && {
          addr: flags.dnsAddr,
          ...(flags.dnsDomain ? { domain: flags.dnsDomain } : {}),
          ...(flags.dnsDatacenter ? { datacenter: flags.dnsDatacenter } : {}),
          ...(flags.dnsOnlyPassing ? { onlyPassing: true } : {}),
          ...(flags.dnsServiceTtl ? { serviceTtl: flags.dnsServiceTtl } : {}),
          ...(flags.dnsNodeTtl ? { nodeTtl: flags.dnsNodeTtl } : {}),
          ...(flags.dnsNegativeTtl ? { negativeTtl: flags.dnsNegativeTtl } : {}),
          ...(flags.dnsRecursor ? { recursor: flags.dnsRecursor } : {}),
          ...(flags.dnsUdpProcesses ? { udpProcesses: Number(flags.dnsUdpProcesses) } : {}),
          ...(flags.dnsTcpMaxConnections ? { tcpMaxConnections: Number(flags.dnsTcpMaxConnections) } : {}),
          ...(flags.dnsTcpMaxConnectionsPerClient ? { tcpMaxConnectionsPerClient: Number(flags.dnsTcpMaxConnectionsPerClient) } : {}),
          ...(flags.dnsTcpIdleTimeout ? { tcpIdleTimeout: flags.dnsTcpIdleTimeout } : {}),
          ...(flags.dnsTcpFrameTimeout ? { tcpFrameTimeout: flags.dnsTcpFrameTimeout } : {}),
        },
        logger,
      });
      logger.info(
        {
          http: server.httpUrl,
          dns: server.dnsAddress ? `${server.dnsAddress.udp.address}:${server.dnsAddress.udp.port}` : null,
          store: server.store.kind, ...(flags.store ? { etcd: flags.store, node } : { dataDir: flags.dev ? null : flags.dataDir }) },
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
      process.on('SIGTERM', () => stop('SIGTERM'));
      process.on('SIGINT', () => stop('SIGINT'));
    });
}
