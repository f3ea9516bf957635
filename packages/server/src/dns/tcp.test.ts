import { describe, expect, it } from 'vitest';
import { tcpClientKey } from './tcp.js';

describe('tcpClientKey: who a DNS TCP connection counts against', () => {
  it('counts an IPv4 address as itself, also when it arrives IPv4-mapped on a dual-stack socket', () => {
    expect(tcpClientKey('192.0.2.7')).toBe('192.0.2.7');
    expect(tcpClientKey('::ffff:192.0.2.7')).toBe('192.0.2.7');
    expect(tcpClientKey('192.0.2.8')).not.toBe(tcpClientKey('192.0.2.7'));
  });

  it('counts every address of an IPv6 /64 as one client, however it is spelled', () => {
    expect(tcpClientKey('2001:db8:1:2::1')).toBe('20010db800010002/64');
    expect(tcpClientKey('2001:db8:1:2:ffff:eeee:dddd:cccc')).toBe(tcpClientKey('2001:0db8:0001:0002::9'));
    expect(tcpClientKey('2001:db8:1:3::1')).not.toBe(tcpClientKey('2001:db8:1:2::1'));
    expect(tcpClientKey('::1')).toBe('0000000000000000/64');
  });
});
