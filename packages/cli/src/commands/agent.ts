import { Option, type Command } from 'commander';
import { TTL_BOUNDS } from '@beacon/core';
import { clientTls, clientToken, serverUrls, type GlobalOptions } from '../connection.js';
import { collect, duration, existingDirectory } from '../flags.js';
import { LOG_LEVELS } from './server.js';

/** `beacon agent`: registers the services defined in a directory and runs their checks on this host. */
export function agentCommand(program: Command): void {
  program
    .command('agent')
    .description('register the services defined in --config-dir, run their checks here, keep their leases alive')
    .requiredOption('--config-dir <dir>', 'directory of service definitions (Beacon JSON/YAML, Consul JSON)', existingDirectory)
    .option('--server <url>', 'server URL(s), comma-separated (default $BEACON_HTTP_ADDR or http://127.0.0.1:8500)')
    .addOption(new Option('--lease-ttl <duration>', "lease of each instance (1s-24h); a dead agent's instances leave after it").argParser(duration(TTL_BOUNDS)).default(10_000, '10s'))
    .addOption(
      new Option('--drain-grace <duration>', 'on SIGTERM or a removed definition: time between draining and deregistering')
        .argParser(duration({ minMs: 0, maxMs: TTL_BOUNDS.maxMs }))
        .default(5_000, '5s'),
    )
    .option('--check-allow <cidr>', 'let checks target this range besides the instance itself (repeatable)', collect)
    .option('--enable-script-checks', 'run script checks (argv, no shell); refused otherwise')
    .option('--node <name>', 'node name for definitions that name none (default: host name)')
    .option('--address <addr>', 'address for definitions that give none', '127.0.0.1')
    .option('--no-watch', 'reload only on SIGHUP, not when files in --config-dir change')
    .addOption(new Option('--log-level <level>', 'log level').choices(LOG_LEVELS).default(process.env.BEACON_LOG_LEVEL ?? 'info'))
    .action(async (o, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>();
      const tls = clientTls(g);
      // Loaded here so the other commands start without the health engine.
      const { runAgent } = await import('../agent/main.js');
      const token = clientToken(g);
      await runAgent({ ...o, servers: serverUrls(o.server ?? g.server), ...(tls ? { tls } : {}), ...(token ? { token } : {}) });
    });
}
