import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '@beacon/server';
import { npmFailure, packWorkspaces, REPO } from '../../../test-support/pack.js';
import { Backend, beaconServer } from './helpers.js';

// The SDK as a user gets it: `npm pack` of core and client, both tarballs installed into a
// throwaway project (nothing from this repository's node_modules but the TypeScript compiler),
// then an ESM and a CommonJS consumer type-checked and run against a real Beacon server.

const run = promisify(execFile);
const tsc = join(REPO, 'node_modules', 'typescript', 'bin', 'tsc');

const consumer = `import { BeaconError, createClient, isBeaconError, type ErrorCode } from '@beacon/client';
import { xdsBootstrap } from '@beacon/client/xds';

async function main(): Promise<void> {
  const [server, service, port] = process.argv.slice(2) as [string, string, string];
  const client = createClient({ servers: [server] });
  const reg = await client.register({ service, address: '127.0.0.1', port: Number(port) }, { ttlMs: 5_000, drainGraceMs: 0 });
  const view = client.discover(service);
  await view.ready();
  const res = await client.fetch(\`http://\${service}/hello\`, { beacon: { timeoutMs: 5_000 } });
  const body = await res.text();
  let code: ErrorCode | undefined;
  try {
    await client.fetch('http://nosuch/x', { beacon: { timeoutMs: 5_000 } });
  } catch (err) {
    if (isBeaconError(err) && err instanceof BeaconError) code = err.code;
  }
  const xds = xdsBootstrap({ server: '127.0.0.1:8502', node: { id: service } }).node.id;
  console.log(JSON.stringify({ instances: view.instances().map((i) => i.id), body, code, xds }));
  await reg.close();
  await client.close();
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
`;

let dir = '';
let project = '';
let skipped: string | undefined;
let server: RunningServer | undefined;
const backends: Backend[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'beacon-sdk-package-'));
  project = join(dir, 'consumer');
  mkdirSync(project);
  const tarballs = await packWorkspaces(dir, ['packages/core', 'packages/client']);
  const typesNode = (JSON.parse(readFileSync(join(REPO, 'node_modules', '@types', 'node', 'package.json'), 'utf8')) as { version: string }).version;
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'sdk-consumer', version: '0.0.0', private: true }));
  writeFileSync(
    join(project, 'tsconfig.json'),
    JSON.stringify({ compilerOptions: { module: 'nodenext', target: 'es2022', strict: true, skipLibCheck: false, types: ['node'], outDir: 'out' }, files: ['esm.mts', 'cjs.cts'] }),
  );
  writeFileSync(join(project, 'esm.mts'), consumer);
  writeFileSync(join(project, 'cjs.cts'), consumer);
  try {
    await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', ...tarballs, `@types/node@${typesNode}`], { cwd: project, timeout: 60_000 });
  } catch (err) {
    skipped = `npm could not install the tarballs: ${npmFailure(err)}`;
    console.warn(`package test skipped — ${skipped}`);
    return;
  }
  server = await beaconServer();
}, 90_000);

afterAll(async () => {
  for (const b of backends) await b.kill();
  await server?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the packed SDK in a project of its own', () => {
  it('installs from the two tarballs alone, without the optional @grpc/grpc-js, and ships no test files', (ctx) => {
    if (skipped) return ctx.skip();
    const mods = join(project, 'node_modules');
    expect(readdirSync(join(mods, '@beacon')).sort()).toEqual(['client', 'core']);
    expect(existsSync(join(mods, '@grpc'))).toBe(false);
    for (const pkg of ['core', 'client']) expect(files(join(mods, '@beacon', pkg)).filter((f) => f.endsWith('.test.ts') || f.endsWith('.test.js'))).toEqual([]);
  });

  it('every source map points at a file in the package', (ctx) => {
    if (skipped) return ctx.skip();
    let maps = 0;
    for (const pkg of ['core', 'client']) {
      for (const f of files(join(project, 'node_modules', '@beacon', pkg)).filter((x) => x.endsWith('.map'))) {
        maps++;
        const { sources } = JSON.parse(readFileSync(f, 'utf8')) as { sources: string[] };
        for (const s of sources) expect(existsSync(resolve(dirname(f), s)), `${f} → ${s}`).toBe(true);
      }
    }
    expect(maps).toBeGreaterThan(20);
  });

  it('an ESM and a CommonJS consumer type-check (strict, library checks on), register, discover and call through a real server, and build an xDS bootstrap', async (ctx) => {
    if (skipped) return ctx.skip();
    await run(process.execPath, [tsc, '-p', project], { cwd: project, timeout: 60_000 }).catch((err: { stdout?: string; message: string }) => {
      throw new Error(`tsc failed:\n${err.stdout || err.message}`);
    });
    // The CommonJS build really is CommonJS: the SDK is loaded by require() (Node's require(esm)).
    expect(readFileSync(join(project, 'out', 'cjs.cjs'), 'utf8')).toContain('require("@beacon/client")');
    for (const [file, service] of [
      ['esm.mjs', 'sdk-esm'],
      ['cjs.cjs', 'sdk-cjs'],
    ] as const) {
      const backend = await new Backend(`${service}-backend`).start();
      backends.push(backend);
      const { stdout } = await run(process.execPath, [join(project, 'out', file), server!.httpUrl, service, String(backend.port)], { cwd: project, timeout: 30_000 });
      const out = JSON.parse(stdout.trim().split('\n').at(-1)!) as { instances: string[]; body: string; code: string; xds: string };
      expect(out).toEqual({ instances: [`${service}-127.0.0.1-${backend.port}`], body: `${service}-backend`, code: 'not_found', xds: service });
    }
  });
});

/** Every file under `root`, recursively. */
function files(root: string): string[] {
  return readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => join(d.parentPath, d.name));
}
