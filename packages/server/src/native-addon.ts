import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const loaded = new Map<string, unknown>();

/**
 * A native addon built by `packages/server/native/build.mjs` (`npm run build`), or undefined
 * when it was not built (no C compiler) or does not load: callers then take Node's own path.
 */
export function loadAddon<T>(name: 'udp' | 'fanout'): T | undefined {
  if (!loaded.has(name)) {
    const file = fileURLToPath(new URL(`../native/build/${name}.node`, import.meta.url));
    let addon: unknown;
    try {
      addon = existsSync(file) ? createRequire(import.meta.url)(file) : undefined;
    } catch {
      addon = undefined;
    }
    loaded.set(name, addon);
  }
  return loaded.get(name) as T | undefined;
}
