import { execFileSync } from 'node:child_process';
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * The source commit of the running build, for `beacon version` and `beacon_build_info`:
 * `BEACON_COMMIT` when whoever built the package set it (the Dockerfile's COMMIT build argument),
 * else the checkout the CLI runs from. An installed package has neither: undefined.
 */
export function buildCommit(): string | undefined {
  if (process.env.BEACON_COMMIT) return process.env.BEACON_COMMIT;
  try {
    // packages/cli/dist → the repository root. Only that checkout counts: an installed package
    // under node_modules of some other repository must not report that repository's commit.
    const root = realpathSync(fileURLToPath(new URL('../../../', import.meta.url)));
    const [top, commit] = execFileSync('git', ['rev-parse', '--show-toplevel', '--short=12', 'HEAD'], { cwd: root, stdio: ['ignore', 'pipe', 'ignore'], timeout: 2_000 })
      .toString()
      .trim()
      .split('\n');
    return top && commit && realpathSync(top) === root ? commit : undefined;
  } catch {
    return undefined;
  }
}
