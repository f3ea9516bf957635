import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/**
 * The source commit of the running build, for `beacon version` and `beacon_build_info`:
 * `BEACON_COMMIT` when whoever built the package set it (the Dockerfile's COMMIT build argument),
 * else the checkout the CLI runs from. An installed package has neither: undefined.
 */
export function buildCommit(): string | undefined {
  if (process.env.BEACON_COMMIT) return process.env.BEACON_COMMIT;
  try {
    const dir = fileURLToPath(new URL('.', import.meta.url));
    return execFileSync('git', ['rev-parse', '--short=12', 'HEAD'], { cwd: dir, stdio: ['ignore', 'pipe', 'ignore'], timeout: 2_000 }).toString().trim() || undefined;
  } catch {
    return undefined;
  }
}
