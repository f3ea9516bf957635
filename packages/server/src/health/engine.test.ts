import { createServer, type Server } from 'node:http';
import { systemClock, systemRandom, type CheckSpec } from '@beacon/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CheckRunners } from './runners/factory.js';
import { HealthScheduler, type StatusChange } from './scheduler.js';
import { CheckTargetPolicy } from './target-policy.js';
import { CheckDialer } from './dial.js';

/** The real run-time gate, with the default policy (loopback is a fine target for these tests). */
const dial = new CheckDialer(new CheckTargetPolicy()).dial;

/** The pieces together, on the real clock, against a real server: what the registry will wire. */
describe('health engine end to end (real clock, real HTTP server)', () => {
  let code = 200;
  const server: Server = createServer((_req, res) => res.writeHead(code).end(`code ${code}`));
  let port = 0;
  const runners = new CheckRunners({ clock: systemClock, dial });
  const changes: StatusChange[] = [];
  const waiters: Array<() => void> = [];
  const scheduler = new HealthScheduler({
    clock: systemClock,
    random: systemRandom,
    runners,
    damping: false,
    listener: {
      onStatusChange: (c) => {
        changes.push(c);
        waiters.splice(0).forEach((w) => w());
      },
    },
  });
  const nextChange = (): Promise<StatusChange> => new Promise((r) => waiters.push(() => r(changes.at(-1)!)));

  beforeAll(async () => {
    port = await new Promise<number>((r) => server.listen(0, '127.0.0.1', () => r((server.address() as { port: number }).port)));
  });

  afterAll(async () => {
    await scheduler.close();
    await runners.close();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it('validates, runs at once, follows failures through the thresholds, and recovers', async () => {
    const check: CheckSpec = {
      id: 'web', name: 'web', kind: 'http', role: 'readiness', url: `http://127.0.0.1:${port}/health`,
      intervalMs: 100, timeoutMs: 1000, successesBeforePassing: 1, failuresBeforeWarning: 2, failuresBeforeCritical: 3,
    };
    new CheckTargetPolicy().assertRegistration({ spec: { address: '127.0.0.1' }, checks: [check] });

    const ready = nextChange();
    scheduler.add(check);
    expect(await ready).toMatchObject({ from: 'critical', to: 'passing', cause: 'result' });
    expect(scheduler.explain('web')!.runs).toBe(1); // ready on the first answer, not after an interval

    code = 500;
    expect(await nextChange()).toMatchObject({ from: 'passing', to: 'warning' });
    expect(await nextChange()).toMatchObject({ from: 'warning', to: 'critical', output: expect.stringContaining('500 Internal Server Error') });
    const x = scheduler.explain('web')!;
    expect(x.consecutiveFailures).toBeGreaterThanOrEqual(3);

    code = 200;
    expect(await nextChange()).toMatchObject({ from: 'critical', to: 'passing' });
    expect(changes.map((c) => c.to)).toEqual(['passing', 'warning', 'critical', 'passing']);
  });
});
