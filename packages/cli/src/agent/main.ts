import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { exitAfterStop, stdoutLogger } from '../logger.js';
import { BeaconHttp, type TlsOptions } from '@beacon/client/http';
import { systemClock, systemRandom } from '@beacon/core';
import { CheckDialer, CheckRunners, CheckTargetPolicy } from '@beacon/server';
import { Agent } from './agent.js';
import { HttpAgentApi } from './api.js';
import { readDefinitionDir } from './loader.js';
import { watchDir } from './watch.js';

export interface AgentFlags {
  configDir: string;
  servers: string[];
  /** For `https://` servers (the global --ca, --cert, --key). */
  tls?: TlsOptions;
  /** ACL token (the global --token, BEACON_TOKEN or --token-file): needs `service:S write` for every service it registers. */
  token?: string;
  /** Milliseconds (`--lease-ttl`, parsed and bounded by the command). */
  leaseTtl: number;
  /** Milliseconds (`--drain-grace`). */
  drainGrace: number;
  checkAllow?: string[];
  enableScriptChecks?: boolean;
  node?: string;
  address: string;
  /** Reload when files change (`--no-watch` turns it off; SIGHUP still reloads). */
  watch: boolean;
  logLevel: string;
}

/** Editors save in bursts; one reload per burst. */
const WATCH_DEBOUNCE_MS = 200;

/** `beacon agent`: the composition root of an agent process, with its signals. */
export async function runAgent(flags: AgentFlags): Promise<void> {
  const logger = stdoutLogger(flags.logLevel, 'beacon-agent');
  const leaseTtlMs = flags.leaseTtl;
  const drainGraceMs = flags.drainGrace;
  const dir = resolve(flags.configDir);
  const policy = new CheckTargetPolicy({ allow: flags.checkAllow ?? [], enableScriptChecks: !!flags.enableScriptChecks });
  const clock = systemClock;
  const runners = new CheckRunners({ clock, dial: new CheckDialer(policy).dial, enableScriptChecks: policy.enableScriptChecks });
  const ctx = { node: flags.node || hostname(), defaultAddress: flags.address, policy };
  // A server that hangs must not cost the lease: give up on it (and fail over) within about a heartbeat interval.
  const http = new BeaconHttp({ servers: flags.servers, clock, timeoutMs: Math.min(10_000, Math.max(2_000, leaseTtlMs / 3)), ...(flags.tls ? { tls: flags.tls } : {}), ...(flags.token ? { token: flags.token } : {}) });
  const agent = new Agent({
    api: new HttpAgentApi(http),
    clock,
    random: systemRandom,
    runners,
    load: () => readDefinitionDir(dir, ctx),
    leaseTtlMs,
    drainGraceMs,
    logger,
  });

  // The first load must see the directory; later reloads keep the running state when it is gone.
  const first = await agent.reload();
  // systemClock timers are unref'd; this handle keeps the agent running until it is told to stop.
  const keepAlive = setInterval(() => undefined, 1 << 30);
  logger.info({ configDir: dir, servers: http.servers, node: ctx.node, leaseTtlMs, instances: first.added.length, errors: first.errors.length }, 'beacon agent running');

  const reload = (why: string) => {
    logger.info({ why }, 'reloading definitions');
    agent.reload().catch((err: unknown) => logger.error({ err: (err as Error).message }, 'reload failed; keeping the running definitions'));
  };
  const watcher = flags.watch
    ? watchDir(dir, {
        clock,
        debounceMs: WATCH_DEBOUNCE_MS,
        onChange: () => reload('files changed'),
        onError: (err) => logger.warn({ err: err.message }, 'cannot watch the config dir; reload with SIGHUP'),
      })
    : undefined;
  process.on('SIGHUP', () => reload('SIGHUP'));

  exitAfterStop(logger, async (signal) => {
    watcher?.close();
    logger.info({ signal, drainGraceMs }, 'shutting down: draining, then deregistering');
    const force = setTimeout(() => {
      logger.error('shutdown took too long; exiting (the leases will end the instances)');
      process.exit(1);
    }, drainGraceMs + 15_000);
    await agent.shutdown(`agent stopped (${signal})`);
    await runners.close();
    clearTimeout(force);
    clearInterval(keepAlive);
  });
}
