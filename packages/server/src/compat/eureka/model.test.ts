import { describe, expect, it } from 'vitest';
import { instanceFixture } from '@beacon/core/testing';
import { appsHashcode, instanceDoc } from './documents.js';
import { eurekaStatus, parseRegistration } from './model.js';

const base = { instanceId: 'i-1', hostName: 'h1.local', app: 'MY_APP', ipAddr: '10.0.0.1', dataCenterInfo: { name: 'MyOwn' } };

describe('Eureka documents', () => {
  it('reads registrations leniently and maps them onto an instance', () => {
    const { input, side } = parseRegistration(
      { instance: { ...base, port: { $: '8080', '@enabled': true }, securePort: { $: 8443, '@enabled': 'true' }, metadata: { '@class': 'x', build: 42 }, leaseInfo: { durationInSecs: 30 } } },
      'my_app',
      1_000,
    );
    expect(input).toMatchObject({ id: 'i-1', service: 'my-app', address: '10.0.0.1', port: 8080, ports: { http: 8080, https: 8443 }, meta: { build: '42' }, node: 'h1.local', source: 'eureka', ttlMs: 30_000 });
    expect(input.checks).toEqual([expect.objectContaining({ id: 'eureka:i-1', kind: 'ttl', status: 'passing' })]);
    expect(side).toMatchObject({ app: 'MY_APP', hostName: 'h1.local', status: 'UP', renewalIntervalSecs: 30, securePortEnabled: true });
    const defaults = parseRegistration({ instance: { ...base, instanceId: undefined, status: 'STARTING' } }, 'MY_APP', 1_000);
    expect(defaults.input).toMatchObject({ id: 'h1.local', ttlMs: 90_000, port: 0 });
    expect(defaults.input.checks![0]).toMatchObject({ status: 'critical' });
  });

  it('refuses what Eureka refuses', () => {
    expect(() => parseRegistration({ instance: { ...base, app: 'OTHER' } }, 'MY_APP', 0)).toThrow(/Mismatched appName/);
    expect(() => parseRegistration({ instance: { ...base, ipAddr: '' } }, 'MY_APP', 0)).toThrow(/ip address/);
    expect(() => parseRegistration({ instance: { ...base, dataCenterInfo: {} } }, 'MY_APP', 0)).toThrow(/dataCenterInfo/);
    expect(() => parseRegistration({ instance: { ...base, port: { $: 70000 } } }, 'MY_APP', 0)).toThrow(/port/);
    expect(() => parseRegistration('nope', 'MY_APP', 0)).toThrow(/JSON object/);
  });

  it('writes instances the way Eureka servers do, and the status hash code', () => {
    const inst = instanceFixture('n-1', {
      service: 'orders',
      address: '10.0.0.2',
      port: 9000,
      registeredAt: 5,
      change: { kind: 'registered', reason: '', at: 5 },
    });
    const doc = instanceDoc(inst, undefined, undefined);
    expect(doc).toMatchObject({
      app: 'ORDERS',
      hostName: '10.0.0.2',
      status: 'UP',
      overriddenStatus: 'UNKNOWN',
      port: { $: 9000, '@enabled': 'true' },
      securePort: { $: 443, '@enabled': 'false' },
      metadata: { '@class': 'java.util.Collections$EmptyMap' },
      leaseInfo: { renewalIntervalInSecs: 30, durationInSecs: 90 },
      lastDirtyTimestamp: '5',
    });
    expect(eurekaStatus({ ...inst, draining: { reason: 'bye', since: 1 } }, undefined)).toBe('OUT_OF_SERVICE');
    expect(eurekaStatus({ ...inst, maintenance: { reason: 'Eureka status override: DOWN', since: 1 } }, undefined)).toBe('DOWN');
    expect(eurekaStatus({ ...inst, conditions: { ready: false, serving: true, terminating: false } }, undefined)).toBe('DOWN');
    expect(appsHashcode([{ status: 'UP' }, { status: 'DOWN' }, { status: 'UP' }])).toBe('DOWN_1_UP_2_');
    expect(appsHashcode([])).toBe('');
  });
});
