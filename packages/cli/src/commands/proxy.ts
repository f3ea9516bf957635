import { readFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { errors } from '@beacon/core';
import { clientTls, clientToken, serverUrls, type GlobalOptions } from '../connection.js';
import { collect, duration } from '../flags.js';
import { defaultLogFormat, exitAfterStop, LOG_FORMATS, stdoutLogger, type LogFormat } from '../logger.js';
import { LOG_LEVELS } from './server.js';

interface ProxyFlags {
  server?: string;
  listen?: string[];
  failover?: string[];
  config?: string;
  admin?: string;
  accessLog?: 'off' | 'info' | 'debug';
  drainTimeout: number;
  zone?: string;
  logLevel: string;
  logFormat?: LogFormat;
}

function readConfigFile(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw errors.invalid(`${path}: cannot read the configuration file: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

interface ExecFlags {
  server?: string;
  service: string[];
  zone?: string;
  logLevel: string;
}

/** Flags both commands share: where Beacon is and which zone this proxy routes from. */
function common(cmd: Command): Command {
  return cmd
    .option('--server <url>', 'server URL(s), comma-separated (default $BEACON_HTTP_ADDR or http://127.0.0.1:8500)')
    .option('--zone <zone>', "this proxy's zone, for zone-aware balancing");
}

/**
 * `beacon proxy` (a router in front of services, by name) and `beacon exec` (a program run with
 * proxy listeners for the services it calls, found through environment variables). This is the
 * composition root of both: the SDK client, the proxy, the logger and the signals meet here.
 */
export function proxyCommands(program: Command): void {
  common(
    program
      .command('proxy')
      .description('route HTTP and TCP to services by name: listeners follow the registry live (see docs/proxy.md)')
      .option('--listen <addr=service>', 'a listener: 127.0.0.1:15001=payments (HTTP) or 127.0.0.1:15002=tcp:postgres, payments@eu-west for another datacenter (repeatable)', collect)
      .option('--config <file>', 'listeners, routes and policies from a YAML or JSON file'),
  )
    .option('--failover <service=policy>', "when SERVICE has no ready instance in the server's DC, send to other DCs: payments=nearest:2 or payments=eu-west,ap-south (repeatable)", collect)
    .option('--admin <addr>', 'admin port: /metrics, /routes, /healthz (e.g. 127.0.0.1:15000)')
    .addOption(new Option('--access-log <level>', 'log every request at this level (off: none)').choices(['off', 'info', 'debug']))
    .addOption(new Option('--drain-timeout <duration>', 'on SIGTERM: how long requests and connections under way may take to finish').argParser(duration({ minMs: 0, maxMs: 3_600_000 })).default(10_000, '10s'))
    .addOption(new Option('--log-level <level>', 'log level').choices(LOG_LEVELS).default('info').env('BEACON_LOG_LEVEL'))
    .addOption(new Option('--log-format <format>', 'log lines as pretty text or JSON (default: pretty on a terminal, else json)').choices(LOG_FORMATS).env('BEACON_LOG_FORMAT'))
    .action(async (o: ProxyFlags, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>();
      const { createClient } = await import('@beacon/client');
      const { applyFailoverFlags, listenFlag, parseConfig, startProxy } = await import('@beacon/proxy');
      if (!o.config && !o.listen?.length) throw new InvalidArgumentError('give --listen ADDR=SERVICE (repeatable) or --config FILE');
      // A bad file or flag is a usage error (exit 2), like any other bad flag.
      const usage = <T>(f: () => T): T => {
        try {
          return f();
        } catch (err) {
          throw new InvalidArgumentError((err as Error).message);
        }
      };
      const config = o.config ? usage(() => parseConfig(readConfigFile(o.config!), o.config)) : { listeners: [] };
      config.listeners.push(...usage(() => (o.listen ?? []).map(listenFlag)));
      usage(() => applyFailoverFlags(config, o.failover ?? []));
      if (o.admin) config.admin = o.admin;
      if (o.accessLog) config.accessLog = o.accessLog;
      const servers = o.server ?? g.server ? serverUrls(o.server ?? g.server) : (config.servers ?? serverUrls(undefined));
      const tls = clientTls(g);
      const logger = stdoutLogger(o.logLevel, 'beacon-proxy', o.logFormat ?? defaultLogFormat());
      const token = clientToken(g);
      const client = createClient({ servers, ...(tls ? { tls } : {}), ...(token ? { token } : {}), ...((o.zone ?? config.zone) ? { zone: o.zone ?? config.zone } : {}) });
      client.onError((e) => logger.warn({ service: e.service, where: e.where, err: e.error.message }, 'discovery error'));
      const proxy = await startProxy(config, { source: client, clock: client.clock, random: client.random, logger });
      logger.info({ listeners: proxy.listeners.map((l) => `${l.protocol} ${l.host}:${l.port}`), admin: proxy.adminUrl, servers }, 'beacon proxy ready');
      // A flag given outranks the file; the flag's default does not.
      const drainTimeoutMs = cmd.getOptionValueSource('drainTimeout') === 'default' ? (config.drainTimeoutMs ?? o.drainTimeout) : o.drainTimeout;
      exitAfterStop(logger, async (signal) => {
        logger.info({ signal, drainTimeoutMs }, 'draining: no new connections, finishing those under way');
        await proxy.drain(drainTimeoutMs);
        await client.close();
      });
    });

  common(
    program
      .command('exec')
      .description('run a program with PAYMENTS_SERVICE_HOST / _PORT / PAYMENTS_URL pointing at proxy listeners for the services it calls')
      .requiredOption('--service <name[=port]>', 'a service to reach, on a local port (default: any free one) (repeatable)', collect)
      .argument('<command...>', 'the program and its arguments, after --'),
  )
    .addOption(new Option('--log-level <level>', "the proxy's log level (on stderr)").choices(LOG_LEVELS).default('warn').env('BEACON_LOG_LEVEL'))
    .action(async (argv: string[], o: ExecFlags, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>();
      const { createClient } = await import('@beacon/client');
      const { execListeners, parseExecService, serviceEnv, startProxy } = await import('@beacon/proxy');
      const { pino } = await import('pino');
      const services = o.service.map(parseExecService);
      const tls = clientTls(g);
      const token = clientToken(g);
      const client = createClient({ servers: serverUrls(o.server ?? g.server), ...(tls ? { tls } : {}), ...(token ? { token } : {}), ...(o.zone ? { zone: o.zone } : {}) });
      // The program owns stdout; the proxy's own lines go to stderr.
      const logger = pino({ level: o.logLevel, base: { svc: 'beacon-exec' } }, pino.destination({ dest: 2, sync: true }));
      const proxy = await startProxy({ listeners: execListeners(services), accessLog: 'debug' }, { source: client, clock: client.clock, random: client.random, logger });
      const env: Record<string, string> = {};
      proxy.listeners.forEach((l, i) => Object.assign(env, serviceEnv(services[i]!.service, l.host, l.port)));
      const [file, ...args] = argv;
      const child = spawn(file!, args, { stdio: 'inherit', env: { ...process.env, ...env } });
      const forwarded = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'] as const;
      for (const s of forwarded) process.on(s, () => child.kill(s));
      const status = await new Promise<number>((resolve) => {
        child.once('error', (err) => {
          logger.error({ err: err.message }, `cannot run ${file}`);
          resolve(127);
        });
        // A program killed by a signal exits the way a shell reports it: 128 + the signal's number.
        child.once('exit', (code, signal) => resolve(code ?? 128 + (signal ? (osConstants.signals[signal] ?? 0) : 0)));
      });
      await proxy.drain(1_000);
      await client.close();
      process.exit(status);
    });
}
