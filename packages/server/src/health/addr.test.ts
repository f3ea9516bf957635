import { isIP } from 'node:net';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { cidrContains, formatIp, inSpecialRange, parseCidr, parseHost, parseIp, sameIp, splitHostPort } from './addr.js';

describe('parseIp', () => {
  it('parses IPv4 and rejects malformed or ambiguous forms', () => {
    expect(formatIp(parseIp('10.1.2.3')!)).toBe('10.1.2.3');
    expect(parseIp('10.1.2.3')!.family).toBe(4);
    for (const bad of ['10.1.2', '10.1.2.3.4', '256.1.1.1', '010.1.1.1', '1.2.3.-1', '', 'a.b.c.d', '1.2.3.4 ']) expect(parseIp(bad)).toBeUndefined();
  });

  it('parses IPv6 forms, brackets included', () => {
    expect(formatIp(parseIp('::1')!)).toBe('::1');
    expect(formatIp(parseIp('[fe80::1]')!)).toBe('fe80::1');
    expect(formatIp(parseIp('2001:db8::')!)).toBe('2001:db8::');
    expect(formatIp(parseIp('::')!)).toBe('::');
    expect(formatIp(parseIp('64:ff9b::192.0.2.33')!)).toBe('64:ff9b::c000:221');
    for (const bad of ['1::2::3', ':::', '1:2:3:4:5:6:7:8:9', '12345::', 'fe80::1%eth0', 'g::1', '1:2:3:4:5:6:7::8:9']) expect(parseIp(bad)).toBeUndefined();
  });

  it('treats an IPv4-mapped IPv6 address as that IPv4 host', () => {
    const mapped = parseIp('::ffff:10.0.0.5')!;
    expect(mapped.family).toBe(4);
    expect(sameIp(mapped, parseIp('10.0.0.5')!)).toBe(true);
    expect(sameIp(parseIp('::ffff:a00:5')!, parseIp('10.0.0.5')!)).toBe(true);
  });

  it('agrees with node:net on what is an IP literal (property)', () => {
    const v6 = fc.ipV6();
    const v4 = fc.ipV4();
    fc.assert(fc.property(fc.oneof(v4, v6), (s) => parseIp(s) !== undefined && isIP(s) !== 0));
    fc.assert(fc.property(fc.string({ maxLength: 20 }), (s) => (parseIp(s) !== undefined) === (isIP(s) !== 0) || s.includes('%')));
  });

  it('round-trips through formatIp (property)', () => {
    fc.assert(fc.property(fc.ipV6(), (s) => sameIp(parseIp(formatIp(parseIp(s)!))!, parseIp(s)!)));
  });
});

describe('CIDR', () => {
  it('matches IPv4 ranges, including IPv4-mapped addresses', () => {
    const c = parseCidr('10.0.0.0/8')!;
    expect(cidrContains(c, parseIp('10.255.1.2')!)).toBe(true);
    expect(cidrContains(c, parseIp('::ffff:10.9.9.9')!)).toBe(true);
    expect(cidrContains(c, parseIp('11.0.0.1')!)).toBe(false);
    expect(cidrContains(parseCidr('192.168.1.128/25')!, parseIp('192.168.1.200')!)).toBe(true);
    expect(cidrContains(parseCidr('192.168.1.128/25')!, parseIp('192.168.1.100')!)).toBe(false);
    expect(cidrContains(parseCidr('0.0.0.0/0')!, parseIp('8.8.8.8')!)).toBe(true);
    expect(cidrContains(parseCidr('0.0.0.0/0')!, parseIp('2001:db8::1')!)).toBe(false);
  });

  it('matches IPv6 ranges and single hosts', () => {
    expect(cidrContains(parseCidr('fd00::/8')!, parseIp('fd12:3456::1')!)).toBe(true);
    expect(cidrContains(parseCidr('fd00::/8')!, parseIp('fe80::1')!)).toBe(false);
    expect(cidrContains(parseCidr('2001:db8::5')!, parseIp('2001:db8::5')!)).toBe(true);
    expect(cidrContains(parseCidr('2001:db8::5')!, parseIp('2001:db8::6')!)).toBe(false);
  });

  it('rejects bad ranges', () => {
    for (const bad of ['10.0.0.0/33', '::/129', '10.0.0.0/', '10.0.0.0/-1', 'example.com/8', '10.0.0.0/8/8', '/8']) expect(parseCidr(bad)).toBeUndefined();
  });

  it('knows the special ranges', () => {
    expect(inSpecialRange(parseIp('127.0.0.2')!, 'loopback')).toBe(true);
    expect(inSpecialRange(parseIp('::1')!, 'loopback')).toBe(true);
    expect(inSpecialRange(parseIp('169.254.169.254')!, 'linkLocal')).toBe(true);
    expect(inSpecialRange(parseIp('fd00:ec2::254')!, 'linkLocal')).toBe(true);
    expect(inSpecialRange(parseIp('0.0.0.0')!, 'unspecified')).toBe(true);
    expect(inSpecialRange(parseIp('::')!, 'unspecified')).toBe(true);
    expect(inSpecialRange(parseIp('239.1.1.1')!, 'multicast')).toBe(true);
    expect(inSpecialRange(parseIp('10.0.0.1')!, 'linkLocal')).toBe(false);
  });
});

describe('splitHostPort', () => {
  it('splits host, port and an optional /rest', () => {
    expect(splitHostPort('10.0.0.1:80')).toEqual({ host: '10.0.0.1', port: 80, rest: '' });
    expect(splitHostPort('[::1]:9090/my.Service')).toEqual({ host: '::1', port: 9090, rest: 'my.Service' });
    expect(splitHostPort('db.internal:5432')).toEqual({ host: 'db.internal', port: 5432, rest: '' });
    for (const bad of ['10.0.0.1', '::1:80', '10.0.0.1:0', '10.0.0.1:70000', ':80', '[::1]', 'a b:80']) expect(splitHostPort(bad)).toBeUndefined();
  });
});

describe('formatIp', () => {
  it('writes IPv6 the way RFC 5952 (and the WHATWG URL parser) does (property)', () => {
    fc.assert(
      fc.property(fc.ipV6(), (s) => {
        const ip = parseIp(s)!;
        if (ip.family === 4) return;
        expect(formatIp(ip)).toBe(new URL(`http://[${s}]/`).hostname.slice(1, -1));
      }),
      { seed: 10, numRuns: 300 },
    );
  });
});

describe('parseHost', () => {
  it('canonicalises IP literals and DNS names', () => {
    expect(parseHost('::FFFF:10.0.0.1')).toMatchObject({ kind: 'ip', text: '10.0.0.1' });
    expect(parseHost('[FD00:0::5]')).toMatchObject({ kind: 'ip', text: 'fd00::5' });
    expect(parseHost('Db-1.Example.COM.')).toEqual({ kind: 'name', text: 'db-1.example.com' });
    expect(parseHost('my_service')).toEqual({ kind: 'name', text: 'my_service' });
  });

  it('refuses other spellings of an IPv4 address and anything that is not a host', () => {
    const hostile = [
      '2852039166', '0xa9fea9fe', '169.254.43518', '0251.0376.0251.0376', '169.254.169.254.', '0', '9007199254740992', '0x',
      '../../etc/passwd', 'a\u0000b', 'a\r\nb', 'a b', 'evil\u202ecom', '', '.', 'a..b', '-a.com', 'a-.com', 'fe80::1%eth0', 'a'.repeat(64),
      `${'a.'.repeat(127)}com`,
    ];
    for (const h of hostile) expect(parseHost(h), h).toBeUndefined();
  });
});
