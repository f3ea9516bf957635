import { Command, CommanderError } from 'commander';
import { BeaconError, VERSION, type ErrorBody, type ErrorCode } from '@beacon/core';
import { serverCommand } from './commands/server.js';
import { clientCommands } from './commands/client.js';
import { agentCommand } from './commands/agent.js';
import { proxyCommands } from './commands/proxy.js';
import { statusCommand } from './commands/status.js';
import { snapshotCommand } from './commands/snapshot.js';
import { kvCommand } from './commands/kv.js';
import { membersCommand } from './commands/members.js';
import { aclCommand } from './commands/acl.js';
import { datacentersCommand } from './commands/datacenters.js';
import { versionCommand } from './commands/version.js';
import { docsCommands } from './commands/docs.js';
import { addExamples } from './examples.js';
import { jsonRequested, outputOptions } from './output.js';
import { tlsOptions, tokenOptions } from './connection.js';

/** Exit statuses (docs/cli.md): 2 a usage error, 4 not found, 1 any other failure. */
const EXIT_USAGE = 2;
const EXIT_NOT_FOUND = 4;

/** The whole command tree; completion and the man page are generated from it. */
export function buildProgram(json = false, onError: () => void = () => undefined): Command {
  const program = new Command('beacon')
    .version(VERSION, '-V, --version', 'print the version')
    .description('Beacon: service discovery for microservices')
    .option('--server <url>', 'server URL(s), comma-separated (default $BEACON_HTTP_ADDR or http://127.0.0.1:8500)');
  for (const o of [...tlsOptions(), ...tokenOptions(), ...outputOptions()]) program.addOption(o);
  program
    // Commander prints its own errors; this lets main() choose the form and the exit status.
    .exitOverride()
    .configureOutput({
      outputError: (message, write) => {
        onError();
        if (!json) write(message.replace(/^error: /, 'beacon: '));
      },
      ...(json ? { writeErr: () => undefined } : {}),
    });
  versionCommand(program);
  serverCommand(program);
  agentCommand(program);
  proxyCommands(program);
  clientCommands(program);
  statusCommand(program);
  snapshotCommand(program);
  kvCommand(program);
  membersCommand(program);
  aclCommand(program);
  datacentersCommand(program);
  docsCommands(program);
  addExamples(program);
  // One line pointing at the help, not the whole help after every mistake.
  const pointAtHelp = (cmd: Command, path: string) => {
    cmd.showHelpAfterError(`(run 'beacon ${path}--help' for usage)`);
    for (const sub of cmd.commands) pointAtHelp(sub, `${path}${sub.name()} `);
  };
  pointAtHelp(program, '');
  return program;
}

/** The `beacon` binary. */
export async function main(argv: string[]): Promise<void> {
  const json = jsonRequested(argv);
  // Whether commander has already reported the error (its parse errors; not those thrown by actions).
  let printed = false;
  const program = buildProgram(json, () => (printed = true));
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end through here too, with status 0.
      if (err.exitCode === 0) process.exit(0);
      // A command group without its subcommand (`beacon kv`): commander has printed the group's help to stderr.
      if (err.code === 'commander.help') process.exit(EXIT_USAGE);
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
