import { describe, expect, it } from 'vitest';
import { aggregateStatus, BeaconError, ManualClock, seededRandom, type CheckSpec, type CheckStatus, type Instance } from '@beacon/core';
import { CheckTargetPolicy, type CheckResult, type CheckRunner, type RegistrationInput, type RunnerFactory } from '@beacon/server';
import { Agent, type AgentLogger } from './agent.js';
import type { AgentApi } from './api.js';
import { parseDefinitionFile, type FileResult } from './definitions.js';

/**
 * The agent's logic driven by a ManualClock. The server side is an in-memory model of the
 * native API's rules that matter here (lease, 404 when forgotten, check state kept across
 * re-registration); the real HTTP path is covered by test/agent.test.ts.
 */
class FakeServer implements AgentApi {
  readonly calls: string[] = [];
  readonly instances = new Map<string, { body: RegistrationInput; checks: Map<string, { status: CheckStatus; output: string }>; draining: boolean; expiresAt: number }>();
  down = false;
  refuse: string | undefined;

  constructor(private readonly clock: ManualClock) {}

  private gate(what: string): void {
    this.calls.push(what);
    if (this.down) throw new BeaconError('unavailable', 'connection refused');
  }

  async register(body: RegistrationInput): Promise<{ instance: Instance; created: boolean }> {
    this.gate(`register ${body.id}`);
    if (this.refuse) throw new BeaconError('invalid_argument', this.refuse);
    const prev = this.instances.get(body.id!);
    const checks = new Map<string, { status: CheckStatus; output: string }>();
    for (const c of body.checks ?? []) checks.set(c.id!, prev?.checks.get(c.id!) ?? { status: c.status ?? 'critical', output: '' });
    this.instances.set(body.id!, { body, checks, draining: prev?.draining ?? false, expiresAt: this.clock.now() + body.ttlMs! });
    return { instance: this.view(body.id!), created: !prev };
  }

  async heartbeat(id: string): Promise<void> {
    this.gate(`heartbeat ${id}`);
    const i = this.live(id);
    i.expiresAt = this.clock.now() + i.body.ttlMs!;
  }

  async report(checkId: string, status: CheckStatus, note: string): Promise<void> {
    this.gate(`report ${checkId} ${status}`);
    for (const [id, i] of this.instances) {
      const c = i.checks.get(checkId);
      if (c && this.live(id)) {
        c.status = status;
        c.output = note;
        return;
      }
    }
    throw new BeaconError('not_found', `check ${checkId} is not registered`);
  }

  async drain(id: string): Promise<void> {
    this.gate(`drain ${id}`);
    this.live(id).draining = true;
  }

  async deregister(id: string): Promise<void> {
    this.gate(`deregister ${id}`);
    this.live(id);
    this.instances.delete(id);
  }

  /** The lease rule: an instance not renewed in time is gone. */
  private live(id: string) {
    const i = this.instances.get(id);
    if (i && i.expiresAt < this.clock.now()) this.instances.delete(id);
    const now = this.instances.get(id);
    if (!now) throw new BeaconError('not_found', `instance ${id} is not registered`);
    return now;
  }

  status(checkId: string): CheckStatus | undefined {
    for (const i of this.instances.values()) if (i.checks.has(checkId)) return i.checks.get(checkId)!.status;
    return undefined;
  }

  private view(id: string): Instance {
    const i = this.instances.get(id)!;
    const checks = [...i.checks].map(([cid, c]) => ({ id: cid, status: c.status, output: c.output }));
    return { id, checks, status: aggregateStatus({ checks: checks as never }) } as unknown as Instance;
  }

  count(prefix: string): number {
    return this.calls.filter((c) => c.startsWith(prefix)).length;
  }
}

/** Check runs whose outcome the test sets per target URL. */
class Backends implements RunnerFactory {
  readonly health = new Map<string, CheckStatus>();
  runs = 0;
  constructor(private readonly clock: ManualClock) {}
  create(spec: CheckSpec): CheckRunner {
    const key = spec.url ?? spec.target ?? '';
    return {
      kind: 'http',
      run: async (): Promise<CheckResult> => {
        this.runs++;
        const status = this.health.get(key) ?? 'passing';
        return { status, output: `${key} is ${status}`, at: this.clock.now(), durationMs: 1 };
      },
    };
  }
}

const quiet: AgentLogger = { debug() {}, info() {}, warn() {}, error() {} };
const ctx = { node: 'host-a', defaultAddress: '127.0.0.1', policy: new CheckTargetPolicy() };

function setup(files: Record<string, unknown>, opts: { leaseTtlMs?: number; drainGraceMs?: number } = {}) {
  const clock = new ManualClock();
  const server = new FakeServer(clock);
  const backends = new Backends(clock);
  const dir = new Map<string, string>(Object.entries(files).map(([k, v]) => [k, JSON.stringify(v)]));
  const load = async (): Promise<FileResult[]> => [...dir].sort().map(([name, text]) => parseDefinitionFile(name, text, ctx));
  const logs: string[] = [];
  const logger: AgentLogger = { ...quiet, error: (_o, m) => logs.push(m) };
  const agent = new Agent({ api: server, clock, random: seededRandom(7), runners: backends, load, leaseTtlMs: opts.leaseTtlMs ?? 9_000, drainGraceMs: opts.drainGraceMs ?? 5_000, logger, damping: false });
  /** Moves time in small steps, letting every promise the timers start settle between steps. */
  const advance = async (ms: number, step = 50) => {
    for (let t = 0; t < ms; t += step) {
      clock.advance(Math.min(step, ms - t));
      await settle();
    }
  };
  const settle = async () => {
    for (let k = 0; k < 5; k++) {
      await agent.idle();
      await new Promise((r) => setImmediate(r));
    }
  };
  /** Shuts down, moving time through the drain grace. */
  const stop = async () => {
    const done = agent.shutdown();
    await advance((opts.drainGraceMs ?? 5_000) + 100, 100);
    await done;
  };
  return { clock, server, backends, dir, agent, advance, settle, stop, logs, write: (name: string, v: unknown) => dir.set(name, JSON.stringify(v)) };
}

const web = { service: 'web', port: 8080, checks: [{ kind: 'http', url: 'http://127.0.0.1:8080/health', interval: '1s' }] };
const WEB = 'web-127.0.0.1-8080';
const WEB_CHECK = `service:${WEB}`;

describe('beacon agent logic', () => {
  it('registers with source agent and a lease, reports the first result at once, then only changes', async () => {
    const t = setup({ 'web.json': web });
    const summary = await t.agent.reload();
    expect(summary.added).toEqual([WEB]);
    await t.settle();
    const stored = t.server.instances.get(WEB)!;
    expect(stored.body).toMatchObject({ id: WEB, service: 'web', source: 'agent', ttlMs: 9_000, node: 'host-a' });
    expect(t.server.status(WEB_CHECK)).toBe('passing'); // checked at once, not one interval later
    expect(t.server.calls).toEqual([`register ${WEB}`, `report ${WEB_CHECK} passing`]);

    await t.advance(5_000);
    expect(t.backends.runs).toBeGreaterThanOrEqual(5);
    expect(t.server.count('report')).toBe(1); // results that change nothing are not sent

    t.backends.health.set('http://127.0.0.1:8080/health', 'critical');
    await t.advance(1_000);
    expect(t.server.status(WEB_CHECK)).toBe('critical');
    expect(t.server.instances.get(WEB)!.checks.get(WEB_CHECK)!.output).toBe('http://127.0.0.1:8080/health is critical');
    expect(t.agent.status()).toEqual([{ id: WEB, service: 'web', origin: 'web.json', state: 'registered', checks: [{ id: WEB_CHECK, kind: 'http', status: 'critical' }] }]);
    await t.stop();
  });

  it('heartbeats every third of the lease, so the lease never lapses', async () => {
    const t = setup({ 'web.json': web });
    await t.agent.reload();
    await t.settle();
    await t.advance(60_000, 250);
    // 60 s / 3 s, with ±10 % jitter.
    expect(t.server.count('heartbeat')).toBeGreaterThanOrEqual(18);
    expect(t.server.count('heartbeat')).toBeLessThanOrEqual(23);
    expect(t.server.count('register')).toBe(1);
    expect(t.server.instances.has(WEB)).toBe(true);
    await t.stop();
  });

  it('retries quickly while the server is unreachable and registers again, with its checks, when the server forgot it', async () => {
    const t = setup({ 'web.json': web });
    await t.agent.reload();
    await t.settle();
    t.server.down = true;
    await t.advance(12_000, 100);
    // Retries back off from 250 ms but never wait longer than a heartbeat interval.
    expect(t.server.count('heartbeat')).toBeGreaterThan(6);
    // The outage outlived the lease: the server has dropped the instance.
    t.server.down = false;
    await t.advance(3_500, 100);
    expect(t.server.count(`register ${WEB}`)).toBe(2);
    // Re-registered with the status the agent knows, not reset to critical.
    expect(t.server.instances.get(WEB)!.body.checks![0]).toMatchObject({ id: WEB_CHECK, status: 'passing' });
    expect(t.server.status(WEB_CHECK)).toBe('passing');
    await t.stop();
  });

  it('keeps retrying the first registration until a server answers', async () => {
    const t = setup({ 'web.json': web });
    t.server.down = true;
    await t.agent.reload();
    await t.advance(10_000, 100);
    expect(t.agent.status()[0]!.state).toBe('pending');
    const attempts = t.server.count('register');
    expect(attempts).toBeGreaterThan(4);
    t.server.down = false;
    await t.advance(3_100, 100);
    expect(t.agent.status()[0]!.state).toBe('registered');
    expect(t.server.status(WEB_CHECK)).toBe('passing');
    await t.stop();
  });

  it('reloads: adds, updates in place keeping check state, and drains then deregisters a removed definition', async () => {
    const t = setup({ 'web.json': web, 'db.json': { service: 'db', port: 5432, checks: [{ kind: 'tcp', target: '127.0.0.1:5432', interval: '2s' }] } }, { drainGraceMs: 2_000 });
    await t.agent.reload();
    await t.settle();
    expect([...t.server.instances.keys()].sort()).toEqual(['db-127.0.0.1-5432', WEB]);
    const runsBefore = t.backends.runs;

    t.write('web.json', { ...web, tags: ['v2'] });
    t.write('cache.json', { service: 'cache', port: 6379 });
    t.dir.delete('db.json');
    const s = await t.agent.reload();
    expect(s).toMatchObject({ added: ['cache-127.0.0.1-6379'], updated: [WEB], removed: ['db-127.0.0.1-5432'], errors: [] });
    await t.settle();
    expect(t.server.instances.get(WEB)!.body.tags).toEqual(['v2']);
    expect(t.server.status(WEB_CHECK)).toBe('passing');
    // Only tags changed: the check was not restarted, and no status was re-reported.
    expect(t.backends.runs).toBe(runsBefore);
    expect(t.server.count(`report ${WEB_CHECK}`)).toBe(1);
    // Removed: drained at once, deregistered after the grace.
    expect(t.server.instances.get('db-127.0.0.1-5432')!.draining).toBe(true);
    await t.advance(2_100);
    expect(t.server.instances.has('db-127.0.0.1-5432')).toBe(false);
    expect(t.server.instances.has('cache-127.0.0.1-6379')).toBe(true);

    // A reload that changes nothing sends nothing.
    const calls = t.server.calls.length;
    expect(await t.agent.reload()).toMatchObject({ added: [], updated: [], removed: [] });
    await t.settle();
    expect(t.server.calls.slice(calls).filter((c) => !c.startsWith('heartbeat'))).toEqual([]);
    await t.stop();
  });

  it('a changed probe runs at once; a broken file keeps the last good definition running', async () => {
    const t = setup({ 'web.json': web });
    await t.agent.reload();
    await t.settle();
    t.backends.health.set('http://127.0.0.1:8080/ready', 'critical');
    t.write('web.json', { ...web, checks: [{ kind: 'http', url: 'http://127.0.0.1:8080/ready', interval: '1s' }] });
    await t.agent.reload();
    await t.settle();
    expect(t.server.status(WEB_CHECK)).toBe('critical');

    t.dir.set('web.json', '{"service": "web", "port": 8080,');
    const s = await t.agent.reload();
    expect(s.errors[0]).toMatch(/^web\.json: invalid JSON: .*keeping the previous version of web\.json/);
    expect(s.removed).toEqual([]);
    expect(t.logs[0]).toBe(s.errors[0]);
    await t.settle();
    expect(t.server.instances.has(WEB)).toBe(true);
    await t.stop();
  });

  it('a definition the server refuses is retried at the next reload, not in a loop', async () => {
    const t = setup({ 'web.json': web });
    t.server.refuse = 'weight must be an integer from 0 to 65535';
    await t.agent.reload();
    await t.advance(10_000, 500);
    expect(t.server.count('register')).toBe(1);
    expect(t.agent.status()[0]!.state).toBe('rejected');
    expect(t.logs).toContain('web.json: the server refused the definition; fix the file (retried at the next reload)');
    t.server.refuse = undefined;
    await t.agent.reload();
    await t.settle();
    expect(t.agent.status()[0]!.state).toBe('registered');

    // An update the server refuses: the version it holds stays alive (heartbeats, checks) until the file is fixed.
    t.server.refuse = 'meta.owner must be a string of at most 512 characters';
    t.write('web.json', { ...web, tags: ['v2'] });
    await t.agent.reload();
    const beats = t.server.count('heartbeat');
    await t.advance(30_000, 250);
    expect(t.server.instances.get(WEB)!.body.tags).toBeUndefined();
    expect(t.server.count('heartbeat') - beats).toBeGreaterThanOrEqual(9);
    expect(t.agent.status()[0]!.state).toBe('registered');
    t.server.refuse = undefined;
    const s = await t.agent.reload();
    expect(s.updated).toEqual([]); // the file did not change since: retried because it was refused
    await t.settle();
    expect(t.server.instances.get(WEB)!.body.tags).toEqual(['v2']);
    await t.stop();
  });

  it('shutdown drains everything, keeps the lease through the grace, then deregisters', async () => {
    const t = setup({ 'web.json': web, 'cache.json': { service: 'cache', port: 6379 } }, { leaseTtlMs: 3_000, drainGraceMs: 5_000 });
    await t.agent.reload();
    await t.settle();
    const done = t.agent.shutdown();
    await t.settle();
    expect(t.server.instances.get(WEB)!.draining).toBe(true);
    expect(t.server.instances.get('cache-127.0.0.1-6379')!.draining).toBe(true);
    const beats = t.server.count('heartbeat');
    await t.advance(4_900, 100);
    // Still registered during the grace, a grace longer than the lease included.
    expect(t.server.count('deregister')).toBe(0);
    expect(t.server.count('heartbeat')).toBeGreaterThan(beats);
    await t.advance(200, 100);
    await done;
    expect(t.server.instances.size).toBe(0);
    expect(t.server.count('deregister')).toBe(2);
    // Nothing keeps running afterwards: no timer of the agent or its checks is left.
    expect(t.clock.timers).toBe(0);
    // Reloads after shutdown change nothing.
    expect((await t.agent.reload()).errors).toEqual(['the agent is shutting down']);
  });
});
