#!/usr/bin/env node
// Builds the batched-UDP addon (udp.c) with the C compiler and the headers that ship with node:
// no node-gyp, nothing downloaded. Optional: without a compiler or headers it says so and
// exits 0, and the DNS server uses Node's dgram (docs/dns.md, "Batched UDP").
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, 'build', 'udp.node');
const include = join(dirname(process.execPath), '..', 'include', 'node');
const cc = process.env.CC ?? 'cc';
const skip = (why) => {
  console.log(`beacon: batched UDP addon not built (${why}); DNS uses Node's dgram`);
  process.exit(0);
};
if (process.platform !== 'linux') skip('recvmmsg/sendmmsg are Linux calls');
if (!existsSync(join(include, 'node_api.h')) || !existsSync(join(include, 'uv.h'))) skip(`no node headers in ${include}`);
mkdirSync(dirname(out), { recursive: true });
const r = spawnSync(cc, ['-O2', '-Wall', '-shared', '-fPIC', '-DNODE_GYP_MODULE_NAME=beacon_udp', '-I', include, '-o', out, join(here, 'udp.c')], { stdio: 'inherit' });
if (r.error) skip(`${cc}: ${r.error.message}`);
if (r.status !== 0) skip(`${cc} exited ${r.status}`);
