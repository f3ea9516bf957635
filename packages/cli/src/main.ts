import { Command } from 'commander';
import { BeaconError, VERSION } from '@beacon/core';
import { serverCommand } from './commands/server.js';
import { clientCommands } from './commands/client.js';
import { agentCommand } from './commands/agent.js';

/** The `beacon` binary. */
export async function main(argv: string[]): Promise<void> {
  const program = new Command('beacon')
    .version(VERSION)
    .description('Beacon: service discovery for microservices')
    .option('--server <url>', 'server URL(s), comma-separated (default $BEACON_HTTP_ADDR or http://127.0.0.1:8500)')
    .option('--json', 'print JSON instead of tables')
    .showHelpAfterError();
  serverCommand(program);
  agentCommand(program);
  clientCommands(program);
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof BeaconError) {
      process.stderr.write(`beacon: ${err.code}: ${err.message}\n`);
      process.exit(err.code === 'not_found' ? 4 : 1);
    }
    throw err;
  }
}
