// load: POSTs orders at the orders service with a fixed concurrency and prints, every second,
// how many succeeded and how many failed — the number to watch while you kill payments.
//
//   ORDERS=http://127.0.0.1:8080 SECONDS=20 CONCURRENCY=16 node examples/shop/load.mjs
import { Agent, request } from 'undici';

const orders = process.env.ORDERS ?? 'http://127.0.0.1:8080';
const seconds = Number(process.env.SECONDS ?? 20);
const concurrency = Number(process.env.CONCURRENCY ?? 16);
const agent = new Agent({ connections: concurrency });
const total = { ok: 0, failed: 0 };
const by = {};
let tick = { ok: 0, failed: 0 };
const errors = [];
let running = true;
const end = Date.now() + seconds * 1000;

const worker = async () => {
  while (running && Date.now() < end) {
    try {
      const res = await request(`${orders}/orders`, { method: 'POST', dispatcher: agent });
      const body = await res.body.json();
      if (res.statusCode === 201) {
        tick.ok++;
        total.ok++;
        by[body.paid.by] = (by[body.paid.by] ?? 0) + 1;
      } else {
        tick.failed++;
        total.failed++;
        errors.push(`${res.statusCode} ${body.error}`);
      }
    } catch (err) {
      tick.failed++;
      total.failed++;
      errors.push(err.message);
    }
  }
};

const t0 = Date.now();
const timer = setInterval(() => {
  console.log(`[load] t=${String(Math.round((Date.now() - t0) / 1000)).padStart(3)}s  ok ${String(tick.ok).padStart(5)}  failed ${tick.failed}`);
  tick = { ok: 0, failed: 0 };
}, 1000);
await Promise.all(Array.from({ length: concurrency }, worker));
running = false;
clearInterval(timer);
await agent.close();
console.log(`[load] total ok ${total.ok}, failed ${total.failed}; charged by ${JSON.stringify(by)}`);
if (errors.length) console.log(`[load] first errors: ${errors.slice(0, 5).join(' | ')}`);
process.exitCode = total.failed ? 1 : 0;
