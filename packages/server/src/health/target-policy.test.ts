import { BeaconError, type CheckSpec } from '@beacon/core';
import { describe, expect, it } from 'vitest';
import { checkTarget, CheckTargetPolicy } from './target-policy.js';

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

describe('checkTarget', () => {
  it('finds the host and port of each kind', () => {
    expect(checkTarget(http('http://10.0.0.5:8080/health'))).toEqual({ host: '10.0.0.5', port: 8080 });
    expect(checkTarget(http('https://[fd00::5]/'))).toEqual({ host: 'fd00::5', port: 443 });
    expect(checkTarget(http('http://web/'))).toEqual({ host: 'web', port: 80 });
    expect(checkTarget(tcp('[::1]:5432'))).toEqual({ host: '::1', port: 5432 });
    expect(checkTarget(grpc('10.0.0.5:9090/my.Service'))).toEqual({ host: '10.0.0.5', port: 9090 });
    expect(checkTarget({ ...base, id: 't', kind: 'ttl', ttlMs: 1000 })).toBeUndefined();
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

  it('allows a host name only when it is the very name the instance registered', () => {
    expect(refusal(strict, 'web-1.internal', http('http://WEB-1.internal.:8080/'))).toBeUndefined();
    expect(refusal(strict, 'web-1.internal', tcp('WEB-1.internal.:8080'))).toBeUndefined();
    const e = refusal(new CheckTargetPolicy({ allow: ['0.0.0.0/0'] }), '10.0.0.5', http('http://db.internal/'))!;
    expect(e.code).toBe('forbidden');
    expect(e.message).toContain("is a host name other than the instance's address 10.0.0.5");
  });

  it('refuses other spellings of an IPv4 address even when they equal the instance address', () => {
    // Each of these is 169.254.169.254 (or 0.0.0.0) to a resolver; none is a host name.
    for (const spelling of ['2852039166', '0xa9fea9fe', '169.254.43518', '0251.0376.0251.0376', '169.254.169.254.', '0']) {
      for (const check of [tcp(`${spelling}:80`), grpc(`${spelling}:80`)]) expect(refusal(strict, spelling, check)?.code, spelling).toBe('invalid_argument');
      // URLs are parsed the WHATWG way, which reads them as the address they are: refused as such.
      expect(refusal(strict, spelling, http(`http://${spelling}/`))?.code, spelling).toBe('forbidden');
    }
    expect(refusal(strict, '10.0.0.5', http('http://0/'))?.message).toContain('unspecified address (0.0.0.0)');
  });

  it("refuses this server's own listeners unless --check-allow covers them", () => {
    const own = { ownListeners: () => [{ address: '127.0.0.1', port: 8500 }, { address: '::', port: 8600 }] };
    const p = new CheckTargetPolicy(own);
    const e = refusal(p, '127.0.0.1', { ...http('http://127.0.0.1:8500/v1/kv/x'), method: 'PUT', body: 'owned' })!;
    expect(e.code).toBe('forbidden');
    expect(e.message).toContain("is this server's own listener (127.0.0.1:8500)");
    expect(refusal(p, '127.0.0.1', http('http://localhost:8500/'))?.code).toBe('forbidden');
    // A listener on :: answers on every local address.
    expect(refusal(p, '127.0.0.1', tcp('127.0.0.1:8600'))?.code).toBe('forbidden');
    expect(refusal(p, '127.0.0.1', tcp('127.0.0.1:8501'))).toBeUndefined();
    expect(refusal(new CheckTargetPolicy({ ...own, allow: ['127.0.0.1/32'] }), '127.0.0.1', http('http://127.0.0.1:8500/'))).toBeUndefined();
  });

  it('refuses link-local (cloud metadata), unspecified and multicast targets even as the own address', () => {
    const meta = refusal(strict, '169.254.169.254', http('http://169.254.169.254/latest/meta-data/'))!;
    expect(meta.code).toBe('forbidden');
    expect(meta.message).toContain('link-local');
    expect(refusal(strict, 'fd00:ec2::254', http('http://[fd00:ec2::254]/'))?.message).toContain('link-local');
    expect(refusal(strict, '0.0.0.0', tcp('0.0.0.0:8500'))?.message).toContain('unspecified');
    expect(refusal(strict, '::', tcp('[::]:8500'))?.message).toContain('unspecified');
    expect(refusal(strict, '239.1.1.1', tcp('239.1.1.1:80'))?.message).toContain('multicast');
    // 169.254.169.254 through a NAT64 gateway.
    expect(refusal(strict, '64:ff9b::a9fe:a9fe', tcp('[64:ff9b::169.254.169.254]:80'))?.message).toContain('link-local');
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
    expect(refusal(strict, 'unix', grpc('unix:4242'))).toBeUndefined(); // a host named "unix"; the runner dials it as such (dial.test.ts)
  });

  it('checks a whole registration, the shape the registry hands to checkPolicy', () => {
    const policy = new CheckTargetPolicy().asCheckPolicy();
    expect(() => policy({ spec: { address: '10.0.0.5' }, checks: [tcp('10.0.0.5:80'), http('http://10.0.0.5/')] }, 'instance')).not.toThrow();
    expect(() => policy({ spec: { address: '10.0.0.5' }, checks: [tcp('10.0.0.5:80'), tcp('10.9.9.9:80')] }, 'instance')).toThrow(/10\.9\.9\.9/);
  });

  it('lets a caller trusted with any target (operator:write) aim past the instance, but never at what dialling refuses', () => {
    const policy = new CheckTargetPolicy({ ownListeners: () => [{ address: '127.0.0.1', port: 8500 }] });
    const reg = (target: string) => ({ spec: { address: '10.0.0.5' }, checks: [tcp(target)] });
    expect(() => policy.assertRegistration(reg('10.9.9.9:80'), 'anywhere')).not.toThrow();
    expect(() => policy.assertRegistration(reg('db.internal:5432'), 'anywhere')).not.toThrow();
    expect(() => policy.assertRegistration(reg('169.254.169.254:80'), 'anywhere')).toThrow(/link-local/);
    expect(() => policy.assertRegistration(reg('127.0.0.1:8500'), 'anywhere')).toThrow(/own listener/);
    expect(() => policy.assertRegistration(reg('10.9.9.9:80'))).toThrow(/not the instance's address/);
  });

  it('rejects a bad --check-allow value at startup', () => {
    expect(() => new CheckTargetPolicy({ allow: ['10.0.0.0/33'] })).toThrow(expect.objectContaining({ code: 'invalid_argument' }));
    expect(() => new CheckTargetPolicy({ allow: ['intranet'] })).toThrow(/not a CIDR range/);
  });
});
