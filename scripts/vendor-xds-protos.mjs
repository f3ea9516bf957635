#!/usr/bin/env node
// Copies the .proto files Beacon's xDS server loads, and every file they import, out of
// @grpc/grpc-js-xds (a devDependency) into packages/server/protos/: the server then needs neither
// that package nor its dependencies at run time (docs/xds.md, "Protos"). Run again after upgrading it.
import { createRequire } from 'node:module';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(root, 'packages/server/package.json'));
const deps = join(dirname(require.resolve('@grpc/grpc-js-xds/package.json')), 'deps');
const dirs = ['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) => join(deps, d));
const out = join(root, 'packages/server/protos');
// What packages/server/src/xds/protos.ts loads (it reads this list from protos/entries.json).
const entry = [
  'envoy/service/discovery/v3/ads.proto',
  'envoy/config/listener/v3/listener.proto',
  'envoy/config/route/v3/route.proto',
  'envoy/config/cluster/v3/cluster.proto',
  'envoy/config/endpoint/v3/endpoint.proto',
  'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
  'envoy/extensions/filters/http/router/v3/router.proto',
  'envoy/extensions/upstreams/http/v3/http_protocol_options.proto',
];
// protobufjs carries these itself.
const builtIn = (f) => f.startsWith('google/protobuf/');

rmSync(out, { recursive: true, force: true });
const seen = new Set();
const queue = [...entry];
while (queue.length > 0) {
  const file = queue.shift();
  if (seen.has(file) || builtIn(file)) continue;
  seen.add(file);
  const from = dirs.map((d) => join(d, file)).find((p) => existsSync(p));
  if (!from) throw new Error(`${file}: not found under ${deps}`);
  mkdirSync(dirname(join(out, file)), { recursive: true });
  copyFileSync(from, join(out, file));
  for (const m of readFileSync(from, 'utf8').matchAll(/^import\s+(?:public\s+|weak\s+)?"([^"]+)";/gm)) queue.push(m[1]);
}
writeFileSync(join(out, 'entries.json'), JSON.stringify(entry, null, 2) + '\n');
console.log(`${seen.size} files copied into ${out}`);
