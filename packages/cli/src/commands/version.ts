import type { Command } from 'commander';
import { VERSION } from '@beacon/core';
import { buildCommit } from '../commit.js';
import { connect, type GlobalOptions } from '../connection.js';
import { print } from '../output.js';

/** How long `beacon version` waits for the server: it must answer promptly even when none runs. */
const SERVER_TIMEOUT_MS = 2_000;

interface VersionInfo {
  version: string;
  commit: string | null;
  node: string;
  server: { url: string; version: string; node: string } | { url: string; error: string };
}

/** `beacon version`: this CLI's version, commit and Node.js, and the server's version when it answers. */
export function versionCommand(program: Command): void {
  program
    .command('version')
    .description("print the CLI's version, commit and Node.js version, and the server's version when it answers")
    .action(async (_o, cmd: Command) => {
      const opts = cmd.optsWithGlobals<GlobalOptions>();
      const http = connect(opts, SERVER_TIMEOUT_MS);
      let server: VersionInfo['server'];
      try {
        const { body, server: url } = await http.request<{ version: string; node: string }>('GET', '/api/v1/status');
        server = { url, version: body.version, node: body.node };
      } catch (err) {
        // Not a failure of this command: the CLI's own version is still the answer asked for.
        server = { url: http.servers.join(','), error: err instanceof Error ? err.message : String(err) };
      }
      const info: VersionInfo = { version: VERSION, commit: buildCommit() ?? null, node: process.version, server };
      print(opts, info, () => {
        const s = info.server;
        return (
          `cli      ${info.version}\n` +
          `commit   ${info.commit ?? 'unknown (neither BEACON_COMMIT nor a git checkout)'}\n` +
          `node     ${info.node}\n` +
          ('error' in s ? `server   unreachable: ${s.error}\n` : `server   ${s.version} (${s.node} at ${s.url})\n`)
        );
      });
    });
}
