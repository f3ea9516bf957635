import { readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../../', import.meta.url));
// packages/ui is left out: everything it imports is bundled into static files at build time.
const PACKAGES = ['core', 'server', 'client', 'cli'] as const;

interface Manifest {
  name: string;
  version: string;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
}

const manifest = (dir: string): Manifest => JSON.parse(readFileSync(join(root, 'packages', dir, 'package.json'), 'utf8'));

/** Every .ts file under `dir` that ships: tests are left out. */
function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.test.ts'))
    .map((e) => join(e.parentPath, e.name));
}

/** The package each bare specifier names: `@scope/name/sub` → `@scope/name`, `name/sub` → `name`. */
const packageOf = (specifier: string) => specifier.split('/').slice(0, specifier.startsWith('@') ? 2 : 1).join('/');
const isBuiltin = (specifier: string) => specifier.startsWith('node:') || builtinModules.includes(packageOf(specifier));

/** Packages a source file imports (static, dynamic, re-exports, require), comments left out. */
function importsOf(text: string): string[] {
  const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  const specifiers = [...code.matchAll(/(?:\bfrom\s*|\bimport\s*\(?\s*|\brequire\(\s*|\.resolve\(\s*)['"]([^'"\n]+)['"]/g)].map((m) => m[1]!);
  return specifiers.filter((s) => !s.startsWith('.') && !isBuiltin(s)).map(packageOf);
}

describe('package manifests', () => {
  const workspaces = new Map(PACKAGES.map((p) => [manifest(p).name, manifest(p).version]));

  for (const dir of PACKAGES) {
    it(`@beacon/${dir} declares exactly what its shipped sources import`, () => {
      const m = manifest(dir);
      const imported = new Set(sources(join(root, 'packages', dir, 'src')).flatMap((f) => importsOf(readFileSync(f, 'utf8'))));
      imported.delete(m.name);
      const declared = new Set([...Object.keys(m.dependencies ?? {}), ...Object.keys(m.peerDependencies ?? {}), ...Object.keys(m.optionalDependencies ?? {})]);
      expect({ package: m.name, undeclared: [...imported].filter((d) => !declared.has(d)).sort() }).toEqual({ package: m.name, undeclared: [] });
      expect({ package: m.name, unused: [...declared].filter((d) => !imported.has(d)).sort() }).toEqual({ package: m.name, unused: [] });
      // A workspace dependency names the version next to it, so installing the tarballs resolves.
      for (const [dep, range] of Object.entries(m.dependencies ?? {})) if (workspaces.has(dep)) expect({ dep, range }).toEqual({ dep, range: workspaces.get(dep) });
      // Test-only packages stay out of what consumers install, and are never declared twice.
      for (const dep of Object.keys(m.devDependencies ?? {})) expect({ dep, alsoRuntime: Object.hasOwn(m.dependencies ?? {}, dep) }).toEqual({ dep, alsoRuntime: false });
    });
  }

  it('reads the import forms the sources use', () => {
    const text = [
      "import { a } from 'left';",
      "import type { B } from '@scope/right/sub';",
      "export * from 'again';",
      "const x = await import('lazy');",
      "import 'side-effect';",
      "import { readFileSync } from 'node:fs';",
      "import { join } from 'path';",
      "import { here } from './local.js';",
      "const manifest = createRequire(import.meta.url).resolve('located/package.json');",
      "// import { commented } from 'gone';",
      "/** import { doc } from 'gone-too'; */",
    ].join('\n');
    expect(importsOf(text)).toEqual(['left', '@scope/right', 'again', 'lazy', 'side-effect', 'located']);
  });
});
