// orders: takes orders and charges them through the payments service, found with Beacon.
// client.fetch picks a healthy payments instance (least-request), retries a failed attempt on
// another one (the Idempotency-Key makes the POST safe to retry), bounds each attempt and the
// whole call, and sends the remaining budget downstream in x-beacon-deadline-ms.
//
//   BEACON=http://127.0.0.1:8500 PORT=8080 node examples/shop/orders.mjs
import { createServer } from 'node:http';
import { randomUUID } from 'node:crypto';
import { closeOnSignals, createClient, readDeadline } from '@beacon/client';

const beacon = (process.env.BEACON ?? 'http://127.0.0.1:8500').split(',');
const client = createClient({
  servers: beacon,
  services: {
    payments: { balancer: 'least-request', timeoutMs: 5_000, attemptTimeoutMs: 1_500, retry: { maxRetries: 2 } },
  },
});
client.onError((e) => console.error(`[orders] beacon ${e.where} ${e.service}: ${e.error.message}`));

let n = 0;
const server = createServer(async (req, res) => {
  if (req.method === 'GET' && req.url === '/debug/payments') {
    // What this client knows and measures about each payments instance.
    const up = client.upstream('payments');
    const now = client.clock.now();
    const rows = up.endpoints().map((e) => ({
      id: e.id,
      ready: e.instance.conditions.ready,
      candidate: up.candidates().includes(e),
      inflight: e.inflight,
      latencyMs: +e.latencyMs(now).toFixed(2),
      breaker: ['closed', 'open', 'half-open', 'isolated'][e.breaker?.state ?? 0],
      ejectedForMs: Math.max(0, Math.round(e.outlier.ejectedUntil - now)),
    }));
    return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ stale: up.view.stale, budget: up.budget.stats(), instances: rows }, null, 2));
  }
  if (req.method !== 'POST' || req.url !== '/orders') return void res.writeHead(404).end();
  const id = `order-${++n}-${randomUUID().slice(0, 8)}`;
  try {
    const charge = await client.fetch('http://payments/charge', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': id },
      body: JSON.stringify({ amount: 42 }),
      // Our own caller's deadline, if it sent one, caps the call to payments.
      beacon: { deadline: readDeadline(req.headers) },
    });
    const paid = await charge.json();
    res.writeHead(charge.status === 200 ? 201 : 502, { 'content-type': 'application/json' }).end(JSON.stringify({ id, paid }));
  } catch (err) {
    res.writeHead(err.httpStatus ?? 502, { 'content-type': 'application/json' }).end(JSON.stringify({ id, error: err.message }));
  }
});
await new Promise((r) => server.listen(Number(process.env.PORT ?? 8080), '127.0.0.1', r));
const { port } = server.address();
const reg = await client.register({ service: 'orders', address: '127.0.0.1', port }, { ttlMs: 5_000, drainGraceMs: 1_000 });
console.log(`[orders] listening on 127.0.0.1:${port}`);
closeOnSignals([reg, { close: () => new Promise((r) => server.close(r)) }, client]);
