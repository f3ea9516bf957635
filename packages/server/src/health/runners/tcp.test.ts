import { createServer, type Server, type Socket } from 'node:net';
import { systemClock, type CheckSpec } from '@beacon/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CheckRunners } from './factory.js';
import { CheckDialer, staticResolver } from '../dial.js';
import { CheckTargetPolicy } from '../target-policy.js';

/** The real run-time gate, with the default policy (loopback is a fine target for these tests). */
const dial = new CheckDialer(new CheckTargetPolicy()).dial;

function spec(target: string, timeoutMs = 2000): CheckSpec {
  return {
    id: 't1', name: 't1', kind: 'tcp', role: 'liveness', target, timeoutMs,
    successesBeforePassing: 1, failuresBeforeWarning: 1, failuresBeforeCritical: 1,
  };
}

function listen(server: Server, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve((server.address() as { port: number }).port));
  });
}

describe('TCP check runner (real sockets on loopback)', () => {
  const sockets = new Set<Socket>();
  const track = (s: Socket): void => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  };
  const v4 = createServer(track);
  const v6 = createServer(track);
  let v4Port = 0;
  let v6Port = 0;
  let refused = 0;
  const runners = new CheckRunners({ clock: systemClock, dial });

  beforeAll(async () => {
    v4Port = await listen(v4, '127.0.0.1');
    v6Port = await listen(v6, '::1').catch(() => 0);
    const tmp = createServer();
    refused = await listen(tmp, '127.0.0.1');
    await new Promise((r) => tmp.close(r));
  });

  afterAll(async () => {
    await runners.close();
    for (const s of sockets) s.destroy();
    await new Promise((r) => v4.close(r));
    if (v6.listening) await new Promise((r) => v6.close(r));
  });

  it('an open port is passing', async () => {
    const r = await runners.create(spec(`127.0.0.1:${v4Port}`)).run();
    expect(r.status).toBe('passing');
    expect(r.output).toBe(`TCP connect 127.0.0.1:${v4Port}: Success`);
  });

  it('dials the address the dialer vetted, and never one it refused', async () => {
    const named = new CheckRunners({
      clock: systemClock,
      dial: new CheckDialer(new CheckTargetPolicy(), staticResolver({ 'svc.test': ['127.0.0.1'], 'meta.test': ['169.254.169.254'] })).dial,
    });
    expect((await named.create(spec(`svc.test:${v4Port}`)).run()).output).toBe(`TCP connect svc.test:${v4Port}: Success`);
    const refused = await named.create(spec('meta.test:80')).run();
    expect(refused.status).toBe('critical');
    expect(refused.output).toContain('meta.test resolves to 169.254.169.254, which is a link-local address');
    // The other spellings of that address are no host at all.
    expect((await named.create(spec('2852039166:80')).run()).output).toContain('is neither an IP literal nor a DNS host name');
    await named.close();
  });

  it('an IPv6 target in brackets works', async (ctx) => {
    if (!v6Port) ctx.skip();
    const r = await runners.create(spec(`[::1]:${v6Port}`)).run();
    expect(r.status).toBe('passing');
    expect(r.output).toBe(`TCP connect [::1]:${v6Port}: Success`);
  });

  it('a refused port is critical', async () => {
    const r = await runners.create(spec(`127.0.0.1:${refused}`)).run();
    expect(r.status).toBe('critical');
    expect(r.output).toContain('ECONNREFUSED');
  });

  it('a connection that cannot complete is critical after the timeout', async () => {
    // 192.0.2.0/24 is TEST-NET-1: never routed, so the SYN goes unanswered (or fails at once
    // when the machine has no route); either way the run ends critical within the timeout.
    const r = await runners.create(spec('192.0.2.1:9', 150)).run();
    expect(r.status).toBe('critical');
    expect(r.durationMs).toBeLessThan(5000);
  });

  it('refuses a spec without a target', () => {
    expect(() => runners.create({ ...spec('x'), target: undefined })).toThrow(/host:port/);
  });
});
