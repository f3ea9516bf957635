import { describe, expect, it } from 'vitest';
import { BeaconError } from '@beacon/core';
import { parseDnsConfig, serviceTtlFor } from './config.js';

describe('parseDnsConfig', () => {
  it('has Consul-like defaults', () => {
    const c = parseDnsConfig();
    expect(c).toMatchObject({ host: '127.0.0.1', port: 8600, domain: 'consul', datacenter: 'dc1', onlyPassing: false, nodeTtl: 0, negativeTtl: 0, recursor: undefined, maxUdpSize: 1232, udpProcesses: 1 });
    expect(serviceTtlFor(c.serviceTtl, 'anything')).toBe(0);
  });

  it('takes TTL rules as flags give them: exact name, then the longest prefix*, then *', () => {
    const c = parseDnsConfig({ serviceTtl: ['web=30s, web-*=10s', 'web-admin-*=1m', '*=5', 'db=0'] });
    expect(serviceTtlFor(c.serviceTtl, 'web')).toBe(30);
    expect(serviceTtlFor(c.serviceTtl, 'web-x')).toBe(10);
    expect(serviceTtlFor(c.serviceTtl, 'web-admin-1')).toBe(60);
    expect(serviceTtlFor(c.serviceTtl, 'db')).toBe(0);
    expect(serviceTtlFor(c.serviceTtl, 'other')).toBe(5);
    expect(serviceTtlFor(parseDnsConfig({ serviceTtl: { api: '2s' } }).serviceTtl, 'api')).toBe(2);
  });

  it('parses the domain, recursor and durations', () => {
    const c = parseDnsConfig({ addr: '[::1]:0', domain: 'Beacon.Example.', recursor: '9.9.9.9', negativeTtl: '1m', nodeTtl: 3, tcpIdleTimeout: '2s' });
    expect(c).toMatchObject({ host: '::1', port: 0, domain: 'beacon.example', recursor: { host: '9.9.9.9', port: 53 }, negativeTtl: 60, nodeTtl: 3, tcpIdleTimeoutMs: 2000 });
    expect(parseDnsConfig({ recursor: '127.0.0.1:5353' }).recursor).toEqual({ host: '127.0.0.1', port: 5353 });
    expect(parseDnsConfig({ recursor: '::1' }).recursor).toEqual({ host: '::1', port: 53 });
  });

  it('rejects bad settings with invalid_argument', () => {
    for (const bad of [{ addr: 'nope' }, { domain: 'a..b' }, { serviceTtl: 'web' }, { serviceTtl: 'we b=1s' }, { nodeTtl: 'soon' }, { datacenter: 'd c' }, { maxUdpSize: 100 }, { udpProcesses: 0 }]) {
      expect(() => parseDnsConfig(bad), JSON.stringify(bad)).toThrow(BeaconError);
    }
  });
});
