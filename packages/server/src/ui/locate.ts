import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/** Where the installed @beacon/ui package keeps its build, or undefined when it is absent or not built. */
export function builtUiDir(): string | undefined {
  try {
    const dir = join(dirname(createRequire(import.meta.url).resolve('@beacon/ui/package.json')), 'dist');
    return existsSync(join(dir, 'index.html')) ? dir : undefined;
  } catch {
    return undefined;
  }
}
