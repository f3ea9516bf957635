import { describe, expect, it } from 'vitest';
import * as packet from 'dns-packet';
import { ManualClock } from '@beacon/core';
import { ResponseRateLimiter, rrlNetwork, slipReply, type RrlVerdict } from './rrl.js';

const verdicts = (rrl: ResponseRateLimiter, address: string, n: number): RrlVerdict[] => Array.from({ length: n }, () => rrl.verdict(address));

describe('response rate limiting', () => {
  it('sends `rate` responses a second to one network, then every other limited one as TC (slip 2)', () => {
    const clock = new ManualClock();
    const rrl = new ResponseRateLimiter({ rate: 3, slip: 2, clock });
    expect(verdicts(rrl, '192.0.2.1', 7)).toEqual(['send', 'send', 'send', 'drop', 'slip', 'drop', 'slip']);
    // The same /24 shares the bucket; another /24 has its own.
    expect(rrl.verdict('192.0.2.200')).toBe('drop');
    expect(rrl.verdict('192.0.3.1')).toBe('send');
  });

  it('refills at `rate` per second, never beyond one second of burst', () => {
    const clock = new ManualClock();
    const rrl = new ResponseRateLimiter({ rate: 10, slip: 2, clock });
    expect(verdicts(rrl, '198.51.100.7', 10).every((v) => v === 'send')).toBe(true);
    expect(rrl.verdict('198.51.100.7')).not.toBe('send');
    clock.advance(100);
    expect(rrl.verdict('198.51.100.7')).toBe('send');
    expect(rrl.verdict('198.51.100.7')).not.toBe('send');
    clock.advance(60_000);
    expect(verdicts(rrl, '198.51.100.7', 11).filter((v) => v === 'send')).toHaveLength(10);
  });

  it('slip 0 drops every limited response, slip 1 answers each with TC', () => {
    const clock = new ManualClock();
    expect(verdicts(new ResponseRateLimiter({ rate: 1, slip: 0, clock }), '10.0.0.1', 4)).toEqual(['send', 'drop', 'drop', 'drop']);
    expect(verdicts(new ResponseRateLimiter({ rate: 1, slip: 1, clock }), '10.0.0.1', 4)).toEqual(['send', 'slip', 'slip', 'slip']);
  });

  it('counts IPv4 per /24 (also IPv4-mapped) and IPv6 per /56', () => {
    expect(rrlNetwork('192.0.2.1')).toBe(rrlNetwork('192.0.2.254'));
    expect(rrlNetwork('192.0.3.1')).not.toBe(rrlNetwork('192.0.2.1'));
    expect(rrlNetwork('10.0.0.1')).not.toBe(rrlNetwork('0.10.0.1'));
    expect(rrlNetwork('::ffff:192.0.2.77')).toBe(rrlNetwork('192.0.2.1'));
    expect(rrlNetwork('2001:db8:1:2ff::1')).toBe(rrlNetwork('2001:db8:1:200:aaaa::9'));
    expect(rrlNetwork('2001:db8:1:300::1')).not.toBe(rrlNetwork('2001:db8:1:200::1'));
  });

  it('tracks a bounded number of networks: refilled ones are forgotten first, else the oldest', () => {
    const clock = new ManualClock();
    const rrl = new ResponseRateLimiter({ rate: 1, slip: 0, clock, maxNetworks: 2 });
    expect(rrl.verdict('10.0.1.1')).toBe('send');
    expect(rrl.verdict('10.0.2.1')).toBe('send');
    // Full: 10.0.1/24 (the oldest) makes room; 10.0.2/24 stays limited.
    expect(rrl.verdict('10.0.3.1')).toBe('send');
    expect(rrl.verdict('10.0.2.1')).toBe('drop');
    expect(rrl.verdict('10.0.1.1')).toBe('send');
  });
});

describe('slipReply', () => {
  it('keeps the header and question with TC set and no records', () => {
    const full = packet.encode({
      type: 'response',
      id: 99,
      flags: packet.AUTHORITATIVE_ANSWER,
      questions: [{ name: 'web.service.consul', type: 'A', class: 'IN' }],
      answers: [{ name: 'web.service.consul', type: 'A', class: 'IN', ttl: 0, data: '10.0.0.1' }],
    });
    const tc = packet.decode(slipReply(full)!);
    expect(tc).toMatchObject({ id: 99, type: 'response', flag_tc: true, flag_aa: true, questions: [{ name: 'web.service.consul', type: 'A' }], answers: [] });
    expect(slipReply(full.subarray(0, 20))).toBeUndefined();
  });
});
