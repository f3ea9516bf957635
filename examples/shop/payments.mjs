// payments: one instance of the payments service. Registers itself with Beacon (lease +
// heartbeats), honours the caller's deadline, and on SIGTERM drains, waits, deregisters, exits.
//
//   BEACON=http://127.0.0.1:8500 NAME=payments-1 node examples/shop/payments.mjs
import { createServer } from 'node:http';
import { closeOnSignals, createClient, withDeadline } from '@beacon/client';

const beacon = (process.env.BEACON ?? 'http://127.0.0.1:8500').split(',');
const name = process.env.NAME ?? `payments-${process.pid}`;
const zone = process.env.ZONE ?? '';
const drainGraceMs = Number(process.env.DRAIN_GRACE_MS ?? 2_000);

let charges = 0;
const server = createServer(
  withDeadline(async (req, res, deadline) => {
    if (req.method === 'POST' && req.url === '/charge') {
      let body = '';
      for await (const chunk of req) body += chunk;
      const { amount = 0 } = body ? JSON.parse(body) : {};
      charges++;
      const answer = JSON.stringify({ charged: amount, by: name, key: req.headers['idempotency-key'] ?? null, budgetMs: deadline ? Math.round(deadline.remainingMs()) : null });
      res.writeHead(200, { 'content-type': 'application/json' }).end(answer);
      return;
    }
    if (req.url === '/health') return void res.end('ok');
    res.writeHead(404).end();
  }),
);
server.keepAliveTimeout = 10_000;
await new Promise((r) => server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', r));
const { port } = server.address();

const client = createClient({ servers: beacon });
client.onError((e) => console.error(`[${name}] beacon ${e.where}: ${e.error.message}`));
const reg = await client.register(
  {
    id: name,
    service: 'payments',
    address: '127.0.0.1',
    port,
    zone,
    meta: { version: '1.0.0' },
    checks: [{ kind: 'http', url: `http://127.0.0.1:${port}/health`, intervalMs: 2_000, timeoutMs: 1_000 }],
  },
  { ttlMs: 5_000, drainGraceMs },
);
reg.onEvent((e) => e.type !== 'heartbeat' && console.log(`[${name}] ${e.type}${'error' in e ? `: ${e.error.message}` : ''}`));
console.log(`[${name}] listening on 127.0.0.1:${port}, registered as ${reg.id}`);

// SIGTERM: drain (no new requests) → grace (requests under way finish) → deregister → close → exit.
closeOnSignals(
  [
    reg,
    { close: () => new Promise((r) => server.close(r)) },
    client,
    { close: () => console.log(`[${name}] stopped after ${charges} charges`) },
  ],
  { signals: ['SIGTERM', 'SIGINT'] },
);
