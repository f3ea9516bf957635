import { BeaconError } from '@beacon/core';
import { describe, expect, it } from 'vitest';
import { CheckDialer, staticResolver, type HostResolver } from './dial.js';
import { CheckTargetPolicy } from './target-policy.js';

/** A table resolver counting lookups: the dialer must resolve once per dial. */
function table(entries: Record<string, string[]>): HostResolver & { calls: string[] } {
  const calls: string[] = [];
  const inner = staticResolver(entries);
  return { calls, lookup: (name) => (calls.push(name), inner.lookup(name)) };
}

async function refusal(p: Promise<string>): Promise<BeaconError> {
  const e = await p.then(() => undefined, (err: unknown) => err);
  if (!(e instanceof BeaconError)) throw new Error(`expected a BeaconError, got ${String(e)}`);
  return e;
}

describe('CheckDialer', () => {
  const resolver = table({
    'web.internal': ['10.0.0.5', 'fd00::5'],
    'metadata.evil': ['169.254.169.254'],
    'mixed.evil': ['10.0.0.5', '169.254.169.254'],
    'zero.evil': ['0.0.0.0'],
    'self.evil': ['127.0.0.1'],
    'scoped.evil': ['fe80::1%eth0'],
  });
  const policy = new CheckTargetPolicy({ ownListeners: () => [{ address: '127.0.0.1', port: 8500 }] });
  const { dial } = new CheckDialer(policy, resolver);

  it('returns the canonical IP to dial: an IP literal as is, a name resolved once', async () => {
    expect(await dial('::FFFF:10.0.0.5', 80)).toBe('10.0.0.5');
    resolver.calls.length = 0;
    expect(await dial('WEB.internal.', 80)).toBe('10.0.0.5');
    expect(resolver.calls).toEqual(['web.internal']);
  });

  it('refuses a name when any address it resolves to is refused', async () => {
    expect((await refusal(dial('metadata.evil', 80))).message).toBe(
      'metadata.evil resolves to 169.254.169.254, which is a link-local address (169.254.169.254); such targets are refused unless a range allowed with --check-allow covers them',
    );
    expect((await refusal(dial('mixed.evil', 80))).code).toBe('forbidden');
    expect((await refusal(dial('zero.evil', 80))).message).toContain('unspecified');
    expect((await refusal(dial('scoped.evil', 80))).message).toContain('not an address a check may dial');
    expect((await refusal(dial('self.evil', 8500))).message).toContain("this server's own listener (127.0.0.1:8500)");
    expect(await dial('self.evil', 8501)).toBe('127.0.0.1');
  });

  it('refuses what is not a host at all, before any lookup', async () => {
    resolver.calls.length = 0;
    for (const h of ['2852039166', '0xa9fea9fe', '0', 'a b', '../x']) expect((await refusal(dial(h, 80))).code, h).toBe('invalid_argument');
    expect(resolver.calls).toEqual([]);
  });

  it('lets --check-allow open a refused range', async () => {
    const open = new CheckDialer(new CheckTargetPolicy({ allow: ['169.254.169.254/32'] }), resolver);
    expect(await open.dial('metadata.evil', 80)).toBe('169.254.169.254');
  });

  it('passes lookup failures through as they are', async () => {
    await expect(dial('nowhere.invalid', 80)).rejects.toThrow('ENOTFOUND');
  });
});
