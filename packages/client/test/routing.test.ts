import { afterEach, describe, expect, it } from 'vitest';
import { Agent, fetch as undiciFetch, interceptors, request } from 'undici';
import { BeaconError, ManualClock, seededRandom } from '@beacon/core';
import type { RunningServer } from '@beacon/server';
import { CircuitState } from 'cockatiel';
import { beaconInterceptor, createClient, DEADLINE_HEADER, Deadline, withDeadline, type BeaconClient, type ClientOptions } from '@beacon/client';
import { api, Backend, backends, beaconServer, refusingUrl, registerBackend, silentServer, until } from './helpers.js';

const cleanup: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

async function beacon(): Promise<RunningServer> {
  const s = await beaconServer();
  cleanup.push(() => s.close());
  return s;
}

function client(server: RunningServer, opts: Partial<ClientOptions> = {}): BeaconClient {
  const c = createClient({ servers: [server.httpUrl], random: seededRandom(7), ...opts });
  cleanup.push(() => c.close());
  return c;
}

async function fleet(server: RunningServer, service: string, n: number, extra: (k: number) => Record<string, unknown> = () => ({})): Promise<Backend[]> {
  const bs = await backends(service, n);
  cleanup.push(() => Promise.all(bs.map((b) => b.kill())));
  for (const [k, b] of bs.entries()) await registerBackend(server.httpUrl, service, b, extra(k));
  return bs;
}

/** `workers` loops sending requests until `stop()`; returns what happened. */
function load(send: () => Promise<number>, workers: number) {
  let running = true;
  const out = { ok: 0, failed: [] as unknown[] };
  const loops = Array.from({ length: workers }, async () => {
    while (running) {
      try {
        const status = await send();
        if (status === 200) out.ok++;
        else out.failed.push(`HTTP ${status}`);
      } catch (err) {
        out.failed.push(err);
      }
    }
  });
  return {
    out,
    async stop() {
      running = false;
      await Promise.all(loops);
      return out;
    },
  };
}

describe('an instance killed under load', () => {
  it('client.fetch: no request fails; retries stay within the budget', async () => {
    const server = await beacon();
    const bs = await fleet(server, 'payments', 3);
    const c = client(server);
    const l = load(async () => {
      const res = await c.fetch('http://payments/balance');
      await res.text();
      return res.status;
    }, 8);
    await until(() => l.out.ok > 300, 'traffic flowing');
    await bs[1]!.kill();
    const hitsAtKill = l.out.ok;
    await until(() => l.out.ok > hitsAtKill + 1_000, 'traffic after the kill');
    const out = await l.stop();
    expect(out.failed).toEqual([]);
    const up = c.upstream('payments');
    const { retries, allowed } = up.budget.stats();
    expect(retries).toBeGreaterThan(0);
    expect(retries).toBeLessThanOrEqual(allowed);
    // Passive outlier detection took the dead instance out without any help from the registry.
    expect(up.candidates().map((e) => e.id)).not.toContain('payments-2');
  });

  it('the undici dispatcher: idempotent POSTs (Idempotency-Key) and GETs never fail', async () => {
    const server = await beacon();
    const bs = await fleet(server, 'payments', 3);
    const c = client(server);
    let n = 0;
    const l = load(async () => {
      const k = n++;
      if (k % 2) {
        const res = await request('http://payments/charge', { method: 'POST', body: `{"n":${k}}`, headers: { 'idempotency-key': `charge-${k}` }, dispatcher: c.dispatcher });
        await res.body.text();
        return res.statusCode;
      }
      const res = await undiciFetch('http://payments/charge', { dispatcher: c.dispatcher });
      await res.text();
      return res.status;
    }, 8);
    await until(() => l.out.ok > 300, 'traffic flowing');
    await bs[0]!.kill();
    const atKill = l.out.ok;
    await until(() => l.out.ok > atKill + 1_000, 'traffic after the kill');
    const out = await l.stop();
    expect(out.failed).toEqual([]);
    expect(c.upstream('payments').budget.stats().retries).toBeLessThanOrEqual(c.upstream('payments').budget.stats().allowed);
  });

  it('a graceful stop (drain, deregister) loses nothing even for non-idempotent POSTs', async () => {
    const server = await beacon();
    const bs = await fleet(server, 'payments', 3);
    const c = client(server);
    const l = load(async () => {
      const res = await c.fetch('http://payments/charge', { method: 'POST', body: 'x' });
      await res.text();
      return res.status;
    }, 8);
    await until(() => l.out.ok > 300, 'traffic flowing');
    await api(server.httpUrl, 'PUT', '/api/v1/instances/payments-3/drain', { reason: 'deploy' });
    await until(() => !c.upstream('payments').candidates().some((e) => e.id === 'payments-3'), 'drained instance no longer picked');
    await until(() => c.upstream('payments').endpoints().find((e) => e.id === 'payments-3')!.inflight === 0, 'in-flight requests done');
    await bs[2]!.stop();
    await api(server.httpUrl, 'DELETE', '/api/v1/instances/payments-3');
    const atStop = l.out.ok;
    await until(() => l.out.ok > atStop + 500, 'traffic after the stop');
    const out = await l.stop();
    expect(out.failed).toEqual([]);
  });
});

describe('circuit breaker per instance (manual clock)', () => {
  it('opens after consecutive failures, half-opens after the wait, closes on a good trial', async () => {
    const server = await beacon();
    const bs = await fleet(server, 'ledger', 2);
    const bad = bs[1]!;
    let healthy = false;
    bad.behaviour = (_req, res) => void res.writeHead(healthy ? 200 : 500).end();
    const clock = new ManualClock();
    const c = client(server, {
      clock,
      services: { ledger: { balancer: 'round-robin', retry: false, outlier: false, breaker: { halfOpenAfterMs: 1_000 } } },
    });
    const get = async () => {
      const res = await c.fetch('http://ledger/x');
      await res.text();
      return res.status;
    };
    for (let i = 0; i < 10; i++) await get();
    const ep = c.upstream('ledger').endpoints().find((e) => e.id === 'ledger-2')!;
    const states: CircuitState[] = [];
    ep.breaker!.onStateChange((s) => states.push(s));
    expect(ep.breaker!.state).toBe(CircuitState.Open);
    expect(bad.hits).toBe(5); // ConsecutiveBreaker(5)

    for (let i = 0; i < 20; i++) expect(await get()).toBe(200);
    expect(bad.hits).toBe(5);

    clock.advance(1_000);
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push(await get());
    expect(bad.hits).toBe(6); // exactly one trial
    expect(statuses.filter((s) => s === 500)).toHaveLength(1);
    expect(ep.breaker!.state).toBe(CircuitState.Open);

    healthy = true;
    clock.advance(1_000);
    for (let i = 0; i < 4; i++) await get();
    expect(bad.hits).toBe(6); // open time doubled after the failed trial: not yet
    clock.advance(1_000);
    for (let i = 0; i < 10; i++) expect(await get()).toBe(200);
    expect(ep.breaker!.state).toBe(CircuitState.Closed);
    expect(bad.hits).toBeGreaterThan(7);
    expect(states).toEqual([CircuitState.HalfOpen, CircuitState.Open, CircuitState.HalfOpen, CircuitState.Closed]);
  });

  it('fails fast when every instance’s circuit is open', async () => {
    const server = await beacon();
    const bs = await fleet(server, 'ledger', 1);
    bs[0]!.behaviour = (_req, res) => void res.writeHead(503).end();
    const c = client(server, { clock: new ManualClock(), services: { ledger: { retry: false, outlier: false } } });
    for (let i = 0; i < 5; i++) await (await c.fetch('http://ledger/x')).text();
    const err = await c.fetch('http://ledger/x').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BeaconError);
    expect(err).toMatchObject({ code: 'unavailable', details: { reason: 'circuit_open', circuitOpen: 1 } });
    expect(bs[0]!.hits).toBe(5);
  });
});

describe('bulkhead per service', () => {
  it('rejects calls beyond its capacity and queue, on both transports', async () => {
    const server = await beacon();
    const parked: (() => void)[] = [];
    const bs = await fleet(server, 'reports', 1);
    bs[0]!.behaviour = (_req, res) => void parked.push(() => res.end('done'));
    const c = client(server, { services: { reports: { bulkhead: { maxConcurrent: 2, maxQueue: 1 } } } });
    const calls = [c.fetch('http://reports/a'), c.fetch('http://reports/b'), c.fetch('http://reports/c')];
    await until(() => parked.length === 2, 'two calls running');
    const rejected = await c.fetch('http://reports/d').catch((e: unknown) => e);
    expect(rejected).toMatchObject({ code: 'too_many_requests', details: { reason: 'bulkhead' } });
    const viaDispatcher = await request('http://reports/e', { dispatcher: c.dispatcher }).catch((e: unknown) => e);
    expect(viaDispatcher).toMatchObject({ code: 'too_many_requests' });
    while (parked.length || bs[0]!.hits < 3) {
      parked.shift()?.();
      await new Promise((r) => setTimeout(r, 5));
    }
    const bodies = await Promise.all(calls.map(async (p) => (await p).text()));
    expect(bodies).toEqual(['done', 'done', 'done']);
    expect(bs[0]!.hits).toBe(3);
  });
});

describe('load-aware balancers move load away from a slow instance', () => {
  for (const balancer of ['least-request', 'ewma'] as const) {
    it(balancer, async () => {
      const server = await beacon();
      const bs = await fleet(server, 'search', 3);
      bs[2]!.behaviour = (_req, res) => void setTimeout(() => res.end('slow'), 200);
      const c = client(server, { services: { search: { balancer } } });
      let sent = 0;
      const l = load(async () => {
        sent++;
        const res = await c.fetch('http://search/q');
        await res.text();
        return res.status;
      }, 8);
      await until(() => sent >= 800, '800 requests');
      const out = await l.stop();
      expect(out.failed).toEqual([]);
      const total = bs.reduce((n, b) => n + b.hits, 0);
      // Round robin would send it a third; a load-aware balancer sends it a small share.
      expect(bs[2]!.hits / total).toBeLessThan(0.1);
    });
  }
});

describe('zone-aware routing', () => {
  it('stays in the caller’s zone while it is healthy and spills over when it is not', async () => {
    const server = await beacon();
    const bs = await fleet(server, 'inventory', 4, (k) => ({ zone: k < 2 ? 'eu-1' : 'us-1' }));
    const c = client(server, { zone: 'eu-1', services: { inventory: { balancer: { zoneAware: 'round-robin', minHealthyShare: 0.75 } } } });
    const hits = () => bs.map((b) => b.hits);
    const send = async (n: number) => {
      for (let i = 0; i < n; i++) await (await c.fetch('http://inventory/item')).text();
    };
    await send(40);
    expect(hits()).toEqual([20, 20, 0, 0]);

    // One of two local instances down: half the zone is healthy, under 75 % — part of the traffic spills.
    await api(server.httpUrl, 'PUT', '/api/v1/instances/inventory-1/maintenance', { reason: 'disk' });
    await until(() => c.upstream('inventory').candidates().length === 3, 'inventory-1 out');
    const before = hits();
    await send(300);
    const d = hits().map((h, k) => h - before[k]!);
    expect(d[0]).toBe(0);
    expect(d[1]).toBeGreaterThan(150); // ≈ 2/3 stays local
    expect(d[2]! + d[3]!).toBeGreaterThan(40); // ≈ 1/3 spills over

    await api(server.httpUrl, 'PUT', '/api/v1/instances/inventory-2/maintenance', { reason: 'disk' });
    await until(() => c.upstream('inventory').candidates().length === 2, 'inventory-2 out');
    const before2 = hits();
    await send(40);
    expect(hits().map((h, k) => h - before2[k]!)).toEqual([0, 0, 20, 20]);
  });
});

describe('consistent hashing', () => {
  it('sends a key to the same instance on every call', async () => {
    const server = await beacon();
    const bs = await fleet(server, 'sessions', 4);
    const c = client(server, { services: { sessions: { balancer: 'consistent-hash', hashHeader: 'x-user' } } });
    const owner = async (user: string) => {
      const res = await undiciFetch('http://sessions/s', { headers: { 'x-user': user }, dispatcher: c.dispatcher });
      return res.text();
    };
    for (const user of ['ann', 'bob', 'cid', 'dee']) {
      const first = await owner(user);
      for (let i = 0; i < 5; i++) expect(await owner(user)).toBe(first);
      const viaFetch = await (await c.fetch('http://sessions/s', { beacon: { key: user } })).text();
      expect(viaFetch).toBe(first);
    }
    expect(bs.reduce((n, b) => n + b.hits, 0)).toBe(28);
  });
});

describe('stale answers while Beacon is down', () => {
  it('keeps routing to the last known instances', async () => {
    const server = await beaconServer();
    const bs = await fleet(server, 'orders', 2);
    const c = client(server, { discovery: { reconnect: { baseMs: 20, maxMs: 100 } } });
    expect((await c.fetch('http://orders/o')).status).toBe(200);
    await server.close();
    const view = c.upstream('orders').view;
    await until(() => view.stale, 'view stale');
    for (let i = 0; i < 20; i++) expect((await c.fetch('http://orders/o')).status).toBe(200);
    expect(bs[0]!.hits + bs[1]!.hits).toBe(21);
    expect(bs[0]!.hits).toBeGreaterThan(0);
    expect(bs[1]!.hits).toBeGreaterThan(0);
  });
});

describe('timeouts and deadline propagation', () => {
  it('sends the remaining budget downstream and a Beacon-aware server honours it', async () => {
    const server = await beacon();
    const seen: (string | undefined)[] = [];
    let handled = 0;
    const bs = await fleet(server, 'quotes', 1);
    bs[0]!.behaviour = withDeadline((req, res, deadline) => {
      handled++;
      seen.push(req.headers[DEADLINE_HEADER] as string | undefined);
      res.end(String(deadline?.remainingMs() ?? 'none'));
    }) as never;
    const c = client(server);
    await (await c.fetch('http://quotes/q')).text();
    await (await c.fetch('http://quotes/q', { beacon: { timeoutMs: 2_000, attemptTimeoutMs: 500 } })).text();
    await (await c.fetch('http://quotes/q', { beacon: { deadline: Deadline.after(300) } })).text();
    expect(seen[0]).toBeUndefined();
    expect(Number(seen[1])).toBeGreaterThan(0);
    expect(Number(seen[1])).toBeLessThanOrEqual(500);
    expect(Number(seen[2])).toBeGreaterThan(0);
    expect(Number(seen[2])).toBeLessThanOrEqual(300);

    // A request that arrives with no time left is refused before it reaches the handler.
    const late = await fetch(`http://127.0.0.1:${bs[0]!.port}/q`, { headers: { [DEADLINE_HEADER]: '0' } });
    expect(late.status).toBe(504);
    expect((await late.json()).error.code).toBe('timeout');
    expect(handled).toBe(3);
    // A spent deadline never leaves the client.
    await expect(c.fetch('http://quotes/q', { beacon: { deadline: Date.now() - 1 } })).rejects.toMatchObject({ code: 'timeout', details: { reason: 'deadline' } });
    expect(handled).toBe(3);
  });

  it('an attempt that hangs times out and the retry goes to another instance', async () => {
    const server = await beacon();
    const bs = await fleet(server, 'quotes', 2);
    const hung: (() => void)[] = [];
    bs[0]!.behaviour = (_req, res) => void hung.push(() => res.end());
    cleanup.push(() => hung.forEach((f) => f()));
    const c = client(server, { services: { quotes: { balancer: 'round-robin', attemptTimeoutMs: 150, timeoutMs: 3_000 } } });
    for (let i = 0; i < 4; i++) {
      const res = await c.fetch('http://quotes/q');
      expect(await res.text()).toBe('quotes-2');
    }
    expect(bs[0]!.hits).toBeGreaterThan(0);
  });

  it('the overall timeout ends the call', async () => {
    const server = await beacon();
    const bs = await fleet(server, 'quotes', 1);
    const hung: (() => void)[] = [];
    bs[0]!.behaviour = (_req, res) => void hung.push(() => res.end());
    cleanup.push(() => hung.forEach((f) => f()));
    const c = client(server);
    await expect(c.fetch('http://quotes/q', { beacon: { timeoutMs: 100 } })).rejects.toMatchObject({ code: 'timeout' });
  });

  it('the per-call timeout bounds discovery too: with the server refusing, and with it never answering', async () => {
    const silent = await silentServer();
    cleanup.push(() => silent.close());
    for (const [url, cause] of [[await refusingUrl(), /ECONNREFUSED/], [silent.url, /timed out/]] as const) {
      const c = createClient({ servers: [url] });
      cleanup.push(() => c.close());
      const t0 = Date.now();
      const err = await c.fetch('http://payments/x', { beacon: { timeoutMs: 300 } }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'unavailable', details: { reason: 'discovery', service: 'payments', waitedMs: 300 } });
      expect((err as Error).message).toMatch(cause);
      // acquire() (other transports) takes the same bound.
      await expect(c.acquire('payments', { timeoutMs: 300 })).rejects.toMatchObject({ code: 'unavailable', details: { reason: 'discovery', waitedMs: 300 } });
      // Discovery alone would wait 10 s (discoveryTimeoutMs) each time: the calls ended on their own timeouts.
      expect(Date.now() - t0).toBeLessThan(5_000);
    }
  });

  it('a deadline that has passed fails before discovery is awaited', async () => {
    const c = createClient({ servers: [await refusingUrl()] });
    cleanup.push(() => c.close());
    await expect(c.fetch('http://payments/x', { beacon: { deadline: Deadline.after(-1) } })).rejects.toMatchObject({ code: 'timeout', details: { reason: 'deadline' } });
  });
});

describe('transports', () => {
  it('Node’s global fetch accepts client.dispatcher; other hosts pass through; unknown services fail clearly', async () => {
    const server = await beacon();
    await fleet(server, 'profile', 2);
    const plain = await new Backend('plain').start();
    cleanup.push(() => plain.kill());
    const c = client(server);
    const res = await fetch('http://profile/me', { dispatcher: c.dispatcher } as RequestInit);
    expect(await res.text()).toMatch(/^profile-[12]$/);
    const direct = await undiciFetch(`http://127.0.0.1:${plain.port}/`, { dispatcher: c.dispatcher });
    expect(await direct.text()).toBe('plain');
    expect(await (await c.fetch(`http://127.0.0.1:${plain.port}/x?y#z`)).text()).toBe('plain');
    expect(await (await c.fetch(`http://LOCALHOST:${plain.port}/`)).text()).toBe('plain');
    // The port in a service URL is ignored: the instance's port is used.
    expect(await (await c.fetch('http://Profile:1234/me?q=1')).text()).toMatch(/^profile-[12]$/);
    expect(await (await c.fetch(new URL('http://profile/me'))).text()).toMatch(/^profile-[12]$/);
    // The server answers that the service has no instance: not_found, at once, not retried.
    await expect(c.fetch('http://nosuchservice/x')).rejects.toMatchObject({ code: 'not_found', details: { reason: 'not_registered' } });
    const viaUndici = await undiciFetch('http://nosuchservice/x', { dispatcher: c.dispatcher }).catch((e: unknown) => e);
    expect((viaUndici as Error & { cause?: unknown }).cause).toMatchObject({ code: 'not_found' });
  });

  it('beaconInterceptor composes with other undici interceptors and retries a dead instance', async () => {
    const server = await beacon();
    const bs = await fleet(server, 'profile', 2);
    await bs[0]!.kill();
    const c = client(server);
    const agent = new Agent().compose(beaconInterceptor(c), interceptors.responseError());
    cleanup.push(() => agent.close());
    for (let i = 0; i < 10; i++) {
      const res = await undiciFetch('http://profile/me', { dispatcher: agent });
      expect(await res.text()).toBe('profile-2');
      const r2 = await request('http://profile/me', { method: 'POST', body: 'x', dispatcher: agent });
      expect(await r2.body.text()).toBe('profile-2');
    }
  });

  it('acquire() leases an instance for other transports and learns from the outcome', async () => {
    const server = await beacon();
    await fleet(server, 'cache', 2);
    const c = client(server, { services: { cache: { outlier: { consecutiveConnectFailures: 1 } } } });
    const lease = await c.acquire('cache');
    expect(lease.address).toBe('127.0.0.1');
    lease.fail(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }));
    expect(c.upstream('cache').candidates().map((e) => e.id)).not.toContain(lease.instance.id);
    const next = await c.acquire('cache');
    expect(next.instance.id).not.toBe(lease.instance.id);
    next.done(200);
    expect(c.upstream('cache').endpoints().every((e) => e.inflight === 0)).toBe(true);
  });

  it('a second client agent is not needed: close() releases sockets', async () => {
    const server = await beacon();
    await fleet(server, 'profile', 1);
    const c = createClient({ servers: [server.httpUrl] });
    expect((await c.fetch('http://profile/x')).status).toBe(200);
    await c.close();
    await expect(c.fetch('http://profile/x')).rejects.toMatchObject({ code: 'unavailable' });
    void Agent;
  });
});
