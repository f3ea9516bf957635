/**
 * Packing the workspaces as a user gets them, for the tests that install Beacon from tarballs
 * (the SDK in a project of its own, the `beacon` command installed globally).
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const REPO = fileURLToPath(new URL('../', import.meta.url));

/** `npm pack` of `workspaces` (e.g. `packages/core`) into `dir`: the tarballs' paths, in the order given. */
export async function packWorkspaces(dir: string, workspaces: readonly string[]): Promise<string[]> {
  const { stdout } = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir, ...workspaces.flatMap((w) => ['--workspace', w])], { cwd: REPO });
  return (JSON.parse(stdout) as { filename: string }[]).map((p) => join(dir, p.filename));
}

/** npm's own words for a failed install, shortened to a line: the reason a test gives when it skips. */
export function npmFailure(err: unknown): string {
  const e = err as { stderr?: string; message: string };
  return (e.stderr || e.message).trim().split('\n').slice(-3).join(' / ');
}
