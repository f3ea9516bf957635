import { BeaconError, type CheckSpec } from '@beacon/core';
import { describe, expect, it } from 'vitest';
import { checkTargetHost, CheckTargetPolicy } from './target-policy.js';

const base = { name: 'c', role: 'readiness' as const, successesBeforePassing: 1, failuresBeforeWarning: 1, failuresBeforeCritical: 1 };
const http = (url: string): CheckSpec => ({ ...base, id: 'c1', kind: 'http', url });
const tcp = (target: string): CheckSpec => ({ ...base, id: 'c1', kind: 'tcp', target });
const grpc = (target: string): CheckSpec => ({ ...base, id: 'c1', kind: 'grpc', target });

function refusal(policy: CheckTargetPolicy, address: string, check: CheckSpec): BeaconError | undefined {
  try {
    policy.assertCheck(address, check);
    return undefined;
  } catch (e) {
    if (e instanceof BeaconError) return e;
    throw e;
  }
}

describe('checkTargetHost', () => {
  it('finds the host of each kind', () => {
    expect(checkTargetHost(http('http://10.0.0.5:8080/health'))).toBe('10.0.0.5');
    expect(checkTargetHost(http('https://[fd00::5]:8443/'))).toBe('fd00::5');
    expect(checkTargetHost(tcp('[::1]:5432'))).toBe('::1');
    expect(checkTargetHost(grpc('10.0.0.5:9090/my.Service'))).toBe('10.0.0.5');
    expect(checkTargetHost({ ...base, id: 't', kind: 'ttl', ttlMs: 1000 })).toBeUndefined();
  });
});

describe('CheckTargetPolicy', () => {
  const strict = new CheckTargetPolicy();

  it("allows the instance's own address, any port, for every active kind", () => {
    expect(refusal(strict, '10.0.0.5', http('http://10.0.0.5:8080/health'))).toBeUndefined();
    expect(refusal(strict, '10.0.0.5', tcp('10.0.0.5:22'))).toBeUndefined();
    expect(refusal(strict, '10.0.0.5', grpc('10.0.0.5:9090'))).toBeUndefined();
    expect(refusal(strict, 'fd00::5', http('http://[fd00:0::5]/'))).toBeUndefined();
    expect(refusal(strict, '10.0.0.5', tcp('[::ffff:10.0.0.5]:80'))).toBeUndefined();
  });

  it('refuses another host with a clear, actionable message', () => {
    const e = refusal(strict, '10.0.0.5', http('http://10.0.0.6:8080/health'))!;
    expect(e.code).toBe('forbidden');
    expect(e.httpStatus).toBe(403);
    expect(e.message).toBe(
      "check c1: target 10.0.0.6 is not the instance's address 10.0.0.5; an operator can allow other targets with --check-allow CIDR. " +
        'Active checks may only probe the instance itself, so the registry cannot be used to reach other hosts',
    );
  });

  it('allows targets inside --check-allow ranges (IPv4 and IPv6)', () => {
    const p = new CheckTargetPolicy({ allow: ['10.1.0.0/16', 'fd00:abcd::/32'] });
    expect(refusal(p, '10.0.0.5', tcp('10.1.200.3:5432'))).toBeUndefined();
    expect(refusal(p, '10.0.0.5', tcp('[fd00:abcd:1::9]:5432'))).toBeUndefined();
    const e = refusal(p, '10.0.0.5', tcp('10.2.0.1:5432'))!;
    expect(e.message).toContain('is neither the instance\'s address 10.0.0.5 nor inside an allowed range');
    expect(e.message).toContain('10.1.0.0/16, fd00:abcd::/32');
  });

  it('treats loopback as one machine, and localhost as loopback', () => {
    expect(refusal(strict, '127.0.0.1', http('http://localhost:8080/'))).toBeUndefined();
    expect(refusal(strict, '127.0.0.1', tcp('[::1]:8080'))).toBeUndefined();
    expect(refusal(strict, 'localhost', tcp('127.0.0.1:8080'))).toBeUndefined();
    expect(refusal(strict, '::1', http('http://LOCALHOST./x'))).toBeUndefined();
    // A non-loopback instance may not probe the registry's own machine...
    expect(refusal(strict, '10.0.0.5', http('http://localhost:8500/v1/agent/self'))?.code).toBe('forbidden');
    expect(refusal(strict, '10.0.0.5', tcp('127.0.0.1:22'))?.code).toBe('forbidden');
    // ...unless the operator allows loopback.
    expect(refusal(new CheckTargetPolicy({ allow: ['127.0.0.0/8'] }), '10.0.0.5', http('http://localhost/'))).toBeUndefined();
  });

  it('never resolves hostnames: only the very hostname the instance registered is allowed', () => {
    expect(refusal(strict, 'web-1.internal', http('http://WEB-1.internal.:8080/'))).toBeUndefined();
    const e = refusal(new CheckTargetPolicy({ allow: ['0.0.0.0/0'] }), '10.0.0.5', http('http://db.internal/'))!;
    expect(e.code).toBe('forbidden');
    expect(e.message).toContain('hostnames are not resolved');
  });

  it('refuses link-local (cloud metadata), unspecified and multicast targets even as the own address', () => {
    const meta = refusal(strict, '169.254.169.254', http('http://169.254.169.254/latest/meta-data/'))!;
    expect(meta.code).toBe('forbidden');
    expect(meta.message).toContain('link-local');
    expect(refusal(strict, 'fd00:ec2::254', http('http://[fd00:ec2::254]/'))?.message).toContain('link-local');
    expect(refusal(strict, '0.0.0.0', tcp('0.0.0.0:8500'))?.message).toContain('unspecified');
    expect(refusal(strict, '::', tcp('[::]:8500'))?.message).toContain('unspecified');
    expect(refusal(strict, '239.1.1.1', tcp('239.1.1.1:80'))?.message).toContain('multicast');
    // An operator can still opt in explicitly.
    expect(refusal(new CheckTargetPolicy({ allow: ['169.254.0.0/16'] }), '10.0.0.5', tcp('169.254.1.1:80'))).toBeUndefined();
  });

  it('refuses script checks unless enabled; ttl checks need nothing', () => {
    const script: CheckSpec = { ...base, id: 's1', kind: 'script', args: ['/bin/true'] };
    const e = refusal(strict, '10.0.0.5', script)!;
    expect(e.code).toBe('forbidden');
    expect(e.message).toContain('--enable-script-checks');
    expect(refusal(new CheckTargetPolicy({ enableScriptChecks: true }), '10.0.0.5', script)).toBeUndefined();
    expect(refusal(strict, '10.0.0.5', { ...base, id: 't', kind: 'ttl', ttlMs: 1000 })).toBeUndefined();
  });

  it('rejects an unparseable target as invalid', () => {
    expect(refusal(strict, '10.0.0.5', http('not a url'))?.code).toBe('invalid_argument');
    expect(refusal(strict, '10.0.0.5', tcp('10.0.0.5'))?.code).toBe('invalid_argument');
  });

  it('checks a whole registration, the shape the registry hands to checkPolicy', () => {
    const policy = new CheckTargetPolicy().asCheckPolicy();
    expect(() => policy({ spec: { address: '10.0.0.5' }, checks: [tcp('10.0.0.5:80'), http('http://10.0.0.5/')] })).not.toThrow();
    expect(() => policy({ spec: { address: '10.0.0.5' }, checks: [tcp('10.0.0.5:80'), tcp('10.9.9.9:80')] })).toThrow(/10\.9\.9\.9/);
  });

  it('rejects a bad --check-allow value at startup', () => {
    expect(() => new CheckTargetPolicy({ allow: ['10.0.0.0/33'] })).toThrow(expect.objectContaining({ code: 'invalid_argument' }));
    expect(() => new CheckTargetPolicy({ allow: ['intranet'] })).toThrow(/not a CIDR range/);
  });
});
