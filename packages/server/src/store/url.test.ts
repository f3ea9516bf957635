import { describe, expect, it } from 'vitest';
import { isBeaconError } from '@beacon/core';
import { parseStoreUrl } from './url.js';

describe('store URL', () => {
  it('parses a list of etcd members, with an optional key prefix', () => {
    expect(parseStoreUrl('etcd://10.0.0.1:2379,10.0.0.2:2379,10.0.0.3:2379')).toEqual({
      kind: 'etcd',
      endpoints: ['10.0.0.1:2379', '10.0.0.2:2379', '10.0.0.3:2379'],
      prefix: '',
      tls: false,
    });
    expect(parseStoreUrl('etcd://a:1/prod/')).toEqual({ kind: 'etcd', endpoints: ['a:1'], prefix: '/prod', tls: false });
  });

  it('etcds:// is the same list over TLS', () => {
    expect(parseStoreUrl('etcds://a:1,b/prod')).toEqual({ kind: 'etcd', endpoints: ['a:1', 'b:2379'], prefix: '/prod', tls: true });
  });

  it('defaults the port to 2379 and keeps IPv6 hosts in brackets', () => {
    expect(parseStoreUrl('etcd://etcd-1,[::1]:2380,[fe80::1]').endpoints).toEqual(['etcd-1:2379', '[::1]:2380', '[fe80::1]:2379']);
  });

  it('refuses anything else with invalid_argument', () => {
    for (const bad of ['', 'http://a:2379', 'etcd://', 'etcds://', 'etcdss://a:1', 'etcd://a:99999', 'etcd://a:1,,b:2']) {
      let err: unknown;
      try {
        parseStoreUrl(bad);
      } catch (e) {
        err = e;
      }
      expect(isBeaconError(err) && err.code, bad).toBe('invalid_argument');
    }
  });
});
