import type { Command } from 'commander';
import { serverUrls } from '../connection.js';

const collect = (v: string, prev: string[] = []) => [...prev, v];

/** `beacon agent`: registers the services defined in a directory and runs their checks on this host. */
export function agentCommand(program: Command): void {
  program
    .command('agent')
    .description('register the services defined in --config-dir, run their checks here, keep their leases alive')
    .requiredOption('--config-dir <dir>', 'directory of service definitions (Beacon JSON/YAML, Consul JSON)')
    .option('--server <url>', 'server URL(s), comma-separated (default $BEACON_HTTP_ADDR or http://127.0.0.1:8500)')
    .option('--lease-ttl <duration>', "lease of each instance; a dead agent's instances leave after it", '10s')
    .option('--drain-grace <duration>', 'on SIGTERM or a removed definition: time between draining and deregistering', '5s')
    .option('--check-allow <cidr>', 'let checks target this range besides the instance itself (repeatable)', collect)
    .option('--enable-script-checks', 'run script checks (argv, no shell); refused otherwise')
    .option('--node <name>', 'node name for definitions that name none (default: host name)')
    .option('--address <addr>', 'address for definitions that give none', '127.0.0.1')
    .option('--no-watch', 'reload only on SIGHUP, not when files in --config-dir change')
    .option('--log-level <level>', 'trace|debug|info|warn|error', process.env.BEACON_LOG_LEVEL ?? 'info')
    .action(async (o, cmd: Command) => {
      const g = cmd.optsWithGlobals<{ server?: string }>();
      // Loaded here so the other commands start without the health engine.
      const { runAgent } = await import('../agent/main.js');
      await runAgent({ ...o, servers: serverUrls(o.server ?? g.server) });
    });
}
