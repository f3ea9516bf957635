import type { Command } from 'commander';
import { formatDuration } from '@beacon/core';
import { connect, type GlobalOptions } from '../connection.js';
import { print } from '../output.js';

/** What GET /api/v1/status answers (the fields this command prints). */
interface Status {
  version: string;
  node: string;
  index: number;
  store: string;
  uptimeMs: number;
  services: number;
  instances: number;
  stale: boolean;
  staleForMs?: number;
  insecureOpen: boolean;
  warnings: string[];
  readiness: { status: 'ready' | 'not_ready'; checks: { name: string; ok: boolean; reason: string }[] };
}

/** The human form: the facts, then each readiness check the way /readyz?verbose marks them. */
export function statusText(s: Status): string {
  const rows: [string, string][] = [
    ['node', s.node],
    ['version', s.version],
    ['store', `${s.store}, index ${s.index}`],
    ['catalog', s.stale ? `STALE${s.staleForMs !== undefined ? ` for ${formatDuration(s.staleForMs)}` : ''} (reads may be behind the store)` : 'current'],
    ['services', `${s.services} (${s.instances} instances)`],
    ['uptime', formatDuration(s.uptimeMs)],
    ['ready', s.readiness.status === 'ready' ? 'yes' : 'NO'],
  ];
  const width = Math.max(...rows.map(([k]) => k.length)) + 1;
  const checks = s.readiness.checks.map((c) => `  [${c.ok ? '+' : '-'}] ${c.name.padEnd(10)} ${c.reason}\n`);
  // Last and loud, so a glance at the output does not miss them.
  const warnings = s.warnings.map((w) => `WARNING: ${w}\n`);
  return rows.map(([k, v]) => `${`${k}:`.padEnd(width)} ${v}\n`).join('') + checks.join('') + warnings.join('');
}

/** `beacon status`: the server's state, staleness and readiness. */
export function statusCommand(program: Command): void {
  program
    .command('status')
    .description("the server's version, store, staleness and readiness (its /readyz checks); exits 1 when not ready")
    .action(async (_o, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>();
      const { body } = await connect(g).request<Status>('GET', '/api/v1/status');
      print(g, body, () => statusText(body));
      // Scripts and probes can test `beacon status` the way they test /readyz.
      if (body.readiness.status !== 'ready') process.exitCode = 1;
    });
}
