#!/usr/bin/env node
// `npm run bench -- <name> [args…]` runs bench/<name>/run.mjs; each benchmark prints a table
// and writes JSON to bench/results/<name>.json.
import { existsSync, readdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const here = dirname(fileURLToPath(import.meta.url));
const available = readdirSync(here, { withFileTypes: true })
  .filter((d) => d.isDirectory() && existsSync(join(here, d.name, 'run.mjs')))
  .map((d) => d.name);
const [name, ...rest] = process.argv.slice(2);
if (!name || !available.includes(name)) {
  console.error(`usage: npm run bench -- <name>   (available: ${available.join(', ') || 'none'})`);
  process.exit(2);
}
const r = spawnSync(process.execPath, [join(here, name, 'run.mjs'), ...rest], { stdio: 'inherit' });
process.exit(r.status ?? 1);
