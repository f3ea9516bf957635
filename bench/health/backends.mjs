#!/usr/bin/env node
// The health endpoints for bench/health: `node backends.mjs <ports>` listens on that many
// ports of 127.0.0.1 (node:http, one process), answers every request 200 "ok", and prints one
// JSON line `{"ports":[…]}` once all are listening. Runs in its own process so the checker's
// CPU figure is the checker's alone.
import { createServer } from 'node:http';

const n = Number(process.argv[2] ?? 20);
const body = Buffer.from('ok');
const servers = [];
for (let k = 0; k < n; k++) {
  const s = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
    res.end(body);
  });
  // Checks open a fresh connection per run; keep the accept queue deep enough for bursts.
  s.listen({ port: 0, host: '127.0.0.1', backlog: 4096 });
  servers.push(s);
}
await Promise.all(servers.map((s) => new Promise((r) => (s.listening ? r() : s.once('listening', r)))));
process.stdout.write(JSON.stringify({ ports: servers.map((s) => s.address().port) }) + '\n');
process.on('SIGTERM', () => process.exit(0));
