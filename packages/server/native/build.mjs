#!/usr/bin/env node
// Builds the native addons with the C compiler and the headers that ship with node: no node-gyp,
// nothing downloaded. Both are optional: without a compiler or headers it says so and exits 0,
// and the server uses Node's own paths instead.
//   udp.c     batched UDP for DNS (docs/dns.md, "Batched UDP"); without it, Node's dgram
//   fanout.c  one call sends an SSE frame to many streams (docs/operations.md, "SSE fan-out");
//             without it, one socket.write per stream
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const include = join(dirname(process.execPath), '..', 'include', 'node');
const cc = process.env.CC ?? 'cc';
const ADDONS = [
  { name: 'udp', flags: [], without: "batched UDP addon not built; DNS uses Node's dgram" },
  { name: 'fanout', flags: ['-pthread'], without: 'SSE fan-out addon not built; streams are written one socket.write each' },
];

const why = (() => {
  if (process.platform !== 'linux') return 'recvmmsg/sendmmsg and MSG_DONTWAIT are Linux calls';
  if (!existsSync(join(include, 'node_api.h')) || !existsSync(join(include, 'uv.h'))) return `no node headers in ${include}`;
  return undefined;
})();
for (const a of ADDONS) {
  const fail = why ?? build(a);
  if (fail) console.log(`beacon: ${a.without} (${fail})`);
}

/** Compiles one addon; returns why it could not. */
function build({ name, flags }) {
  const out = join(here, 'build', `${name}.node`);
  mkdirSync(dirname(out), { recursive: true });
  const r = spawnSync(cc, ['-O2', '-Wall', '-shared', '-fPIC', ...flags, `-DNODE_GYP_MODULE_NAME=beacon_${name}`, '-I', include, '-o', out, join(here, `${name}.c`)], { stdio: 'inherit' });
  if (r.error) return `${cc}: ${r.error.message}`;
  if (r.status !== 0) return `${cc} exited ${r.status}`;
  return undefined;
}
