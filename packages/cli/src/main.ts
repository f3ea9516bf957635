import { Command, CommanderError } from 'commander';
import { BeaconError, VERSION, type ErrorBody, type ErrorCode } from '@beacon/core';
import { serverCommand } from './commands/server.js';
import { clientCommands } from './commands/client.js';
import { agentCommand } from './commands/agent.js';
import { statusCommand } from './commands/status.js';
import { snapshotCommand } from './commands/snapshot.js';

/** Exit statuses (docs/cli.md): 2 a usage error, 4 not found, 1 any other failure. */
const EXIT_USAGE = 2;
const EXIT_NOT_FOUND = 4;

/** The `beacon` binary. */
export async function main(argv: string[]): Promise<void> {
  // Known before parsing, so that even a usage error is answered in the form asked for.
  const json = argv.slice(2, argv.includes('--') ? argv.indexOf('--') : undefined).includes('--json');
  // Whether commander has already reported the error (its parse errors; not those thrown by actions).
  let printed = false;
  const program = new Command('beacon')
    .version(VERSION, '-V, --version', 'print the version')
    .description('Beacon: service discovery for microservices')
    .option('--server <url>', 'server URL(s), comma-separated (default $BEACON_HTTP_ADDR or http://127.0.0.1:8500)')
    .option('--json', 'print JSON instead of tables (errors too, as {"error":{"code","message"}} on stderr)')
    // Commander prints its own errors; this lets main() choose the form and the exit status.
    .exitOverride()
    .configureOutput({
      outputError: (message, write) => {
        printed = true;
        if (!json) write(message.replace(/^error: /, 'beacon: '));
      },
      ...(json ? { writeErr: () => undefined } : {}),
    });
  program
    .command('version')
    .description('print the version')
    .action(() => {
      process.stdout.write(json ? JSON.stringify({ version: VERSION }) + '\n' : `${VERSION}\n`);
    });
  serverCommand(program);
  agentCommand(program);
  clientCommands(program);
  statusCommand(program);
  snapshotCommand(program);
  // One line pointing at the help, not the whole help after every mistake.
  program.showHelpAfterError(`(run 'beacon --help' for usage)`);
  for (const cmd of program.commands) cmd.showHelpAfterError(`(run 'beacon ${cmd.name()} --help' for usage)`);
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end through here too, with status 0.
      if (err.exitCode === 0) process.exit(0);
      fail(json, 'invalid_argument', err.message.replace(/^error: /, ''), EXIT_USAGE, printed);
    }
    if (err instanceof BeaconError) fail(json, err.code, err.message, err.code === 'not_found' ? EXIT_NOT_FOUND : 1);
    fail(json, 'internal', err instanceof Error ? err.message : String(err), 1);
  }
}

/** Reports an error (commander has already printed its own usage errors unless --json) and exits. */
function fail(json: boolean, code: ErrorCode, message: string, status: number, printed = false): never {
  const body: ErrorBody = { error: { code, message } };
  if (json) process.stderr.write(JSON.stringify(body) + '\n');
  else if (!printed) process.stderr.write(`beacon: ${code}: ${message}\n`);
  process.exit(status);
}
