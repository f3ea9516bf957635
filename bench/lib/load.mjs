// Shared by the benchmarks that drive the native HTTP API: a closed-loop load generator and a
// registration shaped like a real one.
import { performance } from 'node:perf_hooks';
import { cpuMeter, quantiles as quantilesTo, round } from './proc.mjs';

const quantiles = (values) => quantilesTo(values, 3);

/**
 * `concurrency` workers each send a request, read the whole answer and send the next, until
 * `durationMs` has passed (after an unrecorded warm-up). Throughput counts 2xx answers only.
 */
export async function closedLoop({ dispatcher, concurrency, durationMs, warmupMs = 0, next, pid, maxCount = Infinity }) {
  if (warmupMs > 0) await closedLoop({ dispatcher, concurrency, durationMs: warmupMs, next, pid });
  const lat = [];
  const statuses = {};
  const perSecond = [];
  let ok = 0;
  let failed = 0;
  let issued = 0;
  let firstError;
  const meter = cpuMeter(pid);
  const t0 = performance.now();
  const end = t0 + durationMs;
  const worker = async () => {
    while (performance.now() < end && issued < maxCount) {
      issued++;
      const opts = next();
      const s = performance.now();
      try {
        const res = await dispatcher.request(opts);
        await res.body.dump({ limit: 1 << 20 });
        if (res.statusCode >= 200 && res.statusCode < 300) {
          ok++;
          const e = performance.now();
          lat.push(e - s);
          const sec = Math.floor((e - t0) / 1000);
          perSecond[sec] = (perSecond[sec] ?? 0) + 1;
        } else {
          failed++;
          statuses[res.statusCode] = (statuses[res.statusCode] ?? 0) + 1;
        }
      } catch (err) {
        failed++;
        firstError ??= String(err?.message ?? err);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const wallMs = performance.now() - t0;
  const q = quantiles(lat);
  const cpu = meter();
  // Whole seconds only (the last one is partial); the best second shows what the server did
  // when the other work on the machine left it alone.
  const whole = Array.from({ length: Math.floor(wallMs / 1000) }, (_, i) => perSecond[i] ?? 0);
  return {
    ok,
    failed,
    ...(Object.keys(statuses).length ? { statuses } : {}),
    ...(firstError ? { firstError } : {}),
    seconds: round(wallMs / 1000, 2),
    perSec: Math.round(ok / (wallMs / 1000)),
    ...(whole.length >= 2 ? { bestSecond: Math.max(...whole), medianSecond: quantiles(whole).p50 } : {}),
    latencyMs: { p50: q.p50, p99: q.p99, max: q.max },
    ...cpu,
    // Server CPU time per answered request: the figure other work on the machine distorts least.
    serverCpuUsPerOp: ok > 0 ? round((cpu.serverCpuPct * 1e4 * (wallMs / 1000)) / ok, 1) : null,
  };
}

const json = { 'content-type': 'application/json' };

/** A registration shaped like a real one: address, named ports, tags, a little metadata, a zone. */
export function registration(service, id, n, extra = {}) {
  return {
    id,
    service,
    address: `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`,
    port: 8080,
    ports: { http: 8080, metrics: 9090 },
    tags: ['v2', 'http'],
    meta: { version: '2.14.1', team: 'payments' },
    zone: `zone-${n % 3}`,
    ...extra,
  };
}

/** A native registration request; `headers` adds to the JSON content type (a token, say). */
export const registerOpts = (body, headers = {}) => ({ path: '/api/v1/instances', method: 'PUT', headers: { ...json, ...headers }, body: JSON.stringify(body) });
