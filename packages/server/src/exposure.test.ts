import { describe, expect, it } from 'vitest';
import { checkExposure, isLoopbackHost, openListeners } from './exposure.js';
import { startServer } from './server.js';

describe('exposure', () => {
  it.each([
    ['127.0.0.1', true],
    ['127.255.0.9', true],
    ['::1', true],
    ['0:0:0:0:0:0:0:1', true],
    ['::ffff:127.0.0.1', true],
    ['localhost', true],
    ['LOCALHOST', true],
    ['0.0.0.0', false],
    ['::', false],
    ['10.0.0.1', false],
    ['128.0.0.1', false],
    ['fe80::1', false],
    ['beacon.internal', false],
  ])('%s is loopback: %s', (host, loopback) => {
    expect(isLoopbackHost(host)).toBe(loopback);
  });

  it('names the open listeners as configured', () => {
    expect(
      openListeners([
        { listener: 'http', host: '127.0.0.1', port: 8500 },
        { listener: 'dns', host: '::', port: 8600 },
      ]),
    ).toEqual([{ listener: 'dns', address: '[::]:8600' }]);
  });

  it('startServer refuses an open address without insecureOpen, before opening a store', async () => {
    await expect(startServer({ dev: true, httpAddr: '0.0.0.0:0' })).rejects.toMatchObject({ code: 'invalid_argument', message: expect.stringMatching(/HTTP on 0\.0\.0\.0:0: .*--insecure-open/) });
    await expect(startServer({ dev: true, httpAddr: '127.0.0.1:0', dns: { addr: '[::]:0' } })).rejects.toMatchObject({ code: 'invalid_argument', message: expect.stringMatching(/DNS on \[::\]:0/) });
  });

  it('lets an open address through with ACLs on, and has nothing to warn about then', () => {
    const open = openListeners([{ listener: 'http', host: '0.0.0.0', port: 8500 }]);
    expect(() => checkExposure(open, false)).toThrow(/--acl to require tokens, or --insecure-open/);
    expect(checkExposure(open, false, true)).toEqual([]);
    // xDS streams go through the same ACL decision: an open xDS address is let through the same way.
    const xds = openListeners([{ listener: 'xds', host: '0.0.0.0', port: 18000 }]);
    expect(() => checkExposure(xds, false)).toThrow(/xDS on 0\.0\.0\.0:18000: .*--acl to require tokens/);
    expect(checkExposure(xds, false, true)).toEqual([]);
    expect(checkExposure(xds, true, false)).toHaveLength(1);
  });
});
