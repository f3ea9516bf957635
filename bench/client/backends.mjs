// Backends for the client benchmark: N plain node:http servers in one process, each answering a
// small JSON body with a prebuilt Buffer. Prints {"ports":[…]} on stdout once listening.
import { createServer } from 'node:http';

const n = Number(process.argv[2] ?? 3);
const ports = [];
for (let i = 0; i < n; i++) {
  const body = Buffer.from(JSON.stringify({ ok: true, instance: `bench-${i + 1}` }));
  const server = createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
    res.end(body);
  });
  server.keepAliveTimeout = 60_000;
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  ports.push(server.address().port);
}
process.stdout.write(JSON.stringify({ ports }) + '\n');
process.on('SIGTERM', () => process.exit(0));
