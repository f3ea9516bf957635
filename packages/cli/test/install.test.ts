/**
 * The `beacon` command installed as docs/operations.md says: `npm pack` tarballs of core, server,
 * client, proxy, cli and ui (the built web UI), `npm install -g` into a prefix of its own, then the installed command run.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VERSION } from '@beacon/core';
import { npmFailure, packWorkspaces, REPO } from '../../../test-support/pack.js';
import { freePort, startServing } from './helpers.js';

const run = promisify(execFile);
const WORKSPACES = ['packages/core', 'packages/server', 'packages/client', 'packages/proxy', 'packages/cli', 'packages/ui'];

let dir = '';
let prefix = '';
let skipped: string | undefined;

/**
 * better-sqlite3's install fetches a prebuilt binary from GitHub and, where that is out of reach
 * (as on the machines this suite runs on), compiles SQLite: about 90 s. prebuild-install takes a
 * local prebuild instead, the offline route docs/operations.md gives; this one is the binary the
 * repository's own install built, for this Node and platform.
 */
async function localSqlitePrebuild(into: string): Promise<Record<string, string>> {
  const pkgDir = join(REPO, 'node_modules', 'better-sqlite3');
  const binary = join(pkgDir, 'build', 'Release', 'better_sqlite3.node');
  if (!existsSync(binary)) return {};
  const { version } = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as { version: string };
  mkdirSync(into);
  const name = `better-sqlite3-v${version}-node-v${process.versions.modules}-${process.platform}-${process.arch}.tar.gz`;
  await run('tar', ['-czf', join(into, name), '-C', pkgDir, 'build/Release/better_sqlite3.node']);
  return { npm_config_better_sqlite3_local_prebuilds: into };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'beacon-global-install-'));
  prefix = join(dir, 'prefix');
  const tarballs = await packWorkspaces(dir, WORKSPACES);
  const env = { ...process.env, ...(await localSqlitePrebuild(join(dir, 'prebuilds'))) };
  try {
    await run('npm', ['install', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', ...tarballs], { cwd: dir, env, timeout: 150_000 });
  } catch (err) {
    skipped = `npm could not install the tarballs: ${npmFailure(err)}`;
    console.warn(`global install test skipped — ${skipped}`);
  }
}, 180_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('beacon installed globally from npm pack tarballs', () => {
  it('puts a working `beacon` on the prefix bin, without test files', async (ctx) => {
    if (skipped) return ctx.skip();
    const { stdout } = await run(join(prefix, 'bin', 'beacon'), ['version'], { timeout: 15_000 });
    expect(stdout).toContain(VERSION);
    const installed = join(prefix, 'lib', 'node_modules', '@beacon');
    expect(readdirSync(installed).sort()).toEqual(['cli', 'client', 'core', 'proxy', 'server', 'ui']);
    const testFiles = readdirSync(installed, { recursive: true, encoding: 'utf8' }).filter((f) => /\.test\.(ts|js)$/.test(f) && !f.includes('node_modules'));
    expect(testFiles).toEqual([]);
  });

  it('runs `beacon server --dev` on free ports, answering /api/v1/status and /metrics (xDS on: its protos ship)', async (ctx) => {
    if (skipped) return ctx.skip();
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const server = await startServing(join(prefix, 'bin', 'beacon'), ['server', '--dev', '--http-addr', `127.0.0.1:${port}`, '--dns-addr', '127.0.0.1:0', '--xds-addr', '127.0.0.1:0', '--log-level', 'warn'], url, {
      cwd: dir,
    });
    try {
      const status = (await (await fetch(`${url}/api/v1/status`)).json()) as { version: string };
      expect(status.version).toBe(VERSION);
      const metrics = await (await fetch(`${url}/metrics`)).text();
      expect(metrics).toMatch(new RegExp(`^beacon_build_info\\{version="${VERSION.replace(/\./g, '\\.')}",.*\\} 1$`, 'm'));
      expect(metrics).toMatch(/^beacon_xds_streams 0$/m);
      // The web UI's build ships in @beacon/ui and is found from the installed server.
      const ui = await fetch(`${url}/ui/`);
      expect(ui.status).toBe(200);
      expect(await ui.text()).toContain('<div id="app">');
    } finally {
      expect(await server.stop()).toBe(0);
    }
  });
});

describe('the cli package manifest', () => {
  it('declares every package its built code imports', () => {
    const manifest = JSON.parse(readFileSync(join(REPO, 'packages', 'cli', 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    const dist = join(REPO, 'packages', 'cli', 'dist');
    const imported = new Set<string>();
    for (const f of readdirSync(dist, { recursive: true, encoding: 'utf8' }).filter((x) => x.endsWith('.js'))) {
      for (const m of readFileSync(join(dist, f), 'utf8').matchAll(/(?:from |import\()\s*['"]([^'"./][^'"]*)['"]/g)) {
        const spec = m[1]!;
        if (spec.startsWith('node:')) continue;
        imported.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!);
      }
    }
    expect(imported.size).toBeGreaterThan(3);
    const builtin = new Set(createRequire(import.meta.url)('node:module').builtinModules as string[]);
    expect([...imported].filter((p) => !builtin.has(p) && !(p in manifest.dependencies))).toEqual([]);
  });
});
