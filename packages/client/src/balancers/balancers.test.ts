import { describe, expect, it } from 'vitest';
import { seededRandom, type Instance } from '@beacon/core';
import { createBalancer, hash32, LeastRequest, PeakEwma, RandomBalancer, RendezvousHash, RoundRobin, SmoothWeightedRoundRobin, ZoneAware, type Endpoint } from './index.js';

interface FakeEndpoint extends Endpoint {
  inflight: number;
  lat: number;
  ramp: number;
  weight: number;
}

function ep(id: string, opts: Partial<{ weight: number; zone: string; inflight: number; lat: number; ramp: number }> = {}): FakeEndpoint {
  return {
    id,
    instance: { id } as Instance,
    zone: opts.zone ?? '',
    weight: opts.weight ?? 1,
    inflight: opts.inflight ?? 0,
    lat: opts.lat ?? 1,
    ramp: opts.ramp ?? 1,
    latencyMs() {
      return this.lat;
    },
    rampFactor() {
      return this.ramp;
    },
  };
}

const ctx = (all: readonly Endpoint[], key?: string) => ({ now: 0, all, key });

function tally(pick: () => Endpoint | undefined, n: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const e = pick();
    out[e!.id] = (out[e!.id] ?? 0) + 1;
  }
  return out;
}

describe('round robin', () => {
  it('cycles through every instance in turn', () => {
    const es = [ep('a'), ep('b'), ep('c')];
    const b = new RoundRobin(seededRandom(1));
    const seq = Array.from({ length: 6 }, () => b.pick(es, ctx(es))!.id);
    expect(seq.slice(3)).toEqual(seq.slice(0, 3));
    expect(new Set(seq.slice(0, 3)).size).toBe(3);
  });

  it('lets an instance in slow start through only in proportion to its ramp', () => {
    const es = [ep('a'), ep('b', { ramp: 0.1 })];
    const b = new RoundRobin(seededRandom(3));
    const counts = tally(() => b.pick(es, ctx(es)), 10_000);
    expect(counts.b! / 10_000).toBeGreaterThan(0.03);
    expect(counts.b! / 10_000).toBeLessThan(0.1);
  });

  it('returns undefined for an empty list', () => {
    expect(new RoundRobin(seededRandom(1)).pick([], ctx([]))).toBeUndefined();
  });
});

describe('random', () => {
  it('picks in proportion to weight', () => {
    const es = [ep('a', { weight: 3 }), ep('b', { weight: 1 })];
    const b = new RandomBalancer(seededRandom(5));
    const t = tally(() => b.pick(es, ctx(es)), 20_000);
    expect(t.a! / 20_000).toBeCloseTo(0.75, 1);
  });

  it('falls back to uniform when every weight is 0', () => {
    const es = [ep('a', { weight: 0 }), ep('b', { weight: 0 })];
    const b = new RandomBalancer(seededRandom(5));
    const t = tally(() => b.pick(es, ctx(es)), 1_000);
    expect(t.a).toBeGreaterThan(300);
    expect(t.b).toBeGreaterThan(300);
  });
});

describe('smooth weighted round robin', () => {
  it('spreads a 5:1:1 split evenly, like nginx', () => {
    const es = [ep('a', { weight: 5 }), ep('b', { weight: 1 }), ep('c', { weight: 1 })];
    const b = new SmoothWeightedRoundRobin();
    const seq = Array.from({ length: 7 }, () => b.pick(es, ctx(es))!.id).join('');
    expect(seq).toBe('aabacaa');
  });

  it('gives exact shares over a full cycle, and slow start lowers a weight', () => {
    const es = [ep('a', { weight: 2 }), ep('b', { weight: 3 }), ep('c', { weight: 5 })];
    const b = new SmoothWeightedRoundRobin();
    expect(tally(() => b.pick(es, ctx(es)), 1_000)).toEqual({ a: 200, b: 300, c: 500 });
    es[2]!.ramp = 0.2; // c: 5 → 1
    expect(tally(() => b.pick(es, ctx(es)), 600)).toEqual({ a: 200, b: 300, c: 100 });
  });
});

describe('least request (P2C)', () => {
  it('never picks the busiest of two', () => {
    const es = [ep('a', { inflight: 5 }), ep('b', { inflight: 0 })];
    const b = new LeastRequest(seededRandom(9));
    expect(tally(() => b.pick(es, ctx(es)), 100)).toEqual({ b: 100 });
  });

  it('with three, the busiest instance is never chosen and the others share', () => {
    const es = [ep('a', { inflight: 0 }), ep('b', { inflight: 1 }), ep('c', { inflight: 9 })];
    const b = new LeastRequest(seededRandom(9));
    const t = tally(() => b.pick(es, ctx(es)), 3_000);
    expect(t.c).toBeUndefined();
    // a wins both pairs it is in (2 of 3), b wins (b, c).
    expect(t.a! / 3_000).toBeCloseTo(2 / 3, 1);
  });

  it('weights scale the load it tolerates', () => {
    const es = [ep('a', { inflight: 3, weight: 4 }), ep('b', { inflight: 1, weight: 1 })];
    // (3+1)/4 = 1 < (1+1)/1 = 2
    expect(new LeastRequest(seededRandom(1)).pick(es, ctx(es))!.id).toBe('a');
  });
});

describe('peak EWMA (P2C)', () => {
  it('prefers the faster instance, weighing in-flight requests', () => {
    const es = [ep('fast', { lat: 2, inflight: 0 }), ep('slow', { lat: 50, inflight: 0 })];
    const b = new PeakEwma(seededRandom(2));
    expect(tally(() => b.pick(es, ctx(es)), 50)).toEqual({ fast: 50 });
    es[0]!.inflight = 30; // 2 × 31 = 62 > 50 × 1
    expect(b.pick(es, ctx(es))!.id).toBe('slow');
  });
});

describe('rendezvous consistent hashing', () => {
  const N = 10;
  const KEYS = Array.from({ length: 20_000 }, (_, i) => `user-${i}`);
  const owners = (es: readonly Endpoint[]) => {
    const b = new RendezvousHash(new RandomBalancer(seededRandom(1)));
    return KEYS.map((k) => b.pick(es, ctx(es, k))!.id);
  };
  const moved = (a: string[], b: string[]) => a.filter((x, i) => x !== b[i]).length / a.length;
  const fleet = Array.from({ length: N }, (_, i) => ep(`inst-${i}`));

  it('spreads keys evenly', () => {
    const t: Record<string, number> = {};
    for (const o of owners(fleet)) t[o] = (t[o] ?? 0) + 1;
    for (const n of Object.values(t)) expect(Math.abs(n / KEYS.length - 1 / N)).toBeLessThan(0.02);
  });

  it('moves at most 1/N + 2 % of keys when one of N instances leaves', () => {
    const before = owners(fleet);
    const after = owners(fleet.filter((e) => e.id !== 'inst-3'));
    const share = moved(before, after);
    expect(share).toBeLessThanOrEqual(1 / N + 0.02);
    // Exactly the leaver's keys moved.
    expect(before.filter((o, i) => o !== after[i]).every((o) => o === 'inst-3')).toBe(true);
  });

  it('moves at most 1/N + 2 % of keys when one instance joins', () => {
    const before = owners(fleet);
    const after = owners([...fleet, ep('inst-new')]);
    expect(moved(before, after)).toBeLessThanOrEqual(1 / N + 0.02);
    expect(after.filter((o, i) => o !== before[i]).every((o) => o === 'inst-new')).toBe(true);
  });

  it('honours weights and ignores slow start (which would move keys)', () => {
    const es = [ep('a', { weight: 3 }), ep('b', { weight: 1, ramp: 0.01 })];
    const t: Record<string, number> = {};
    for (const o of owners(es)) t[o] = (t[o] ?? 0) + 1;
    expect(t.a! / KEYS.length).toBeCloseTo(0.75, 1);
  });

  it('without a key falls back to its fallback balancer', () => {
    const es = [ep('a'), ep('b')];
    const b = new RendezvousHash({ name: 'first', pick: (e) => e[1] });
    expect(b.pick(es, ctx(es))!.id).toBe('b');
  });

  it('hash32 is stable', () => {
    expect(hash32('payments')).toBe(hash32('payments'));
    expect(hash32('a')).not.toBe(hash32('b'));
  });
});

describe('zone-aware', () => {
  const local = [ep('eu-a', { zone: 'eu' }), ep('eu-b', { zone: 'eu' })];
  const remote = [ep('us-a', { zone: 'us' }), ep('us-b', { zone: 'us' })];
  const all = [...local, ...remote];

  it('keeps traffic local while the zone is healthy', () => {
    const b = new ZoneAware(new RoundRobin(seededRandom(1)), seededRandom(1), { zone: 'eu' });
    const t = tally(() => b.pick(all, ctx(all)), 100);
    expect(Object.keys(t).sort()).toEqual(['eu-a', 'eu-b']);
  });

  it('spills over in proportion when too little of the zone is healthy, and fully when none is', () => {
    const b = new ZoneAware(new RoundRobin(seededRandom(1)), seededRandom(4), { zone: 'eu', minHealthyShare: 0.8 });
    const eligible = [local[0]!, ...remote]; // half the zone healthy: 0.5 / 0.8 stays local
    const t = tally(() => b.pick(eligible, ctx(all)), 8_000);
    expect(t['eu-a']! / 8_000).toBeCloseTo(0.625, 1);
    const none = tally(() => b.pick(remote, ctx(all)), 100);
    expect(Object.keys(none).sort()).toEqual(['us-a', 'us-b']);
  });

  it('without a zone it is its inner balancer', () => {
    const b = createBalancer({ zoneAware: 'round-robin' }, { random: seededRandom(1) });
    expect(Object.keys(tally(() => b.pick(all, ctx(all)), 40)).length).toBe(4);
  });
});

describe('createBalancer', () => {
  it('builds each strategy by name and rejects unknown ones', () => {
    for (const name of ['round-robin', 'random', 'weighted-round-robin', 'least-request', 'ewma', 'consistent-hash'] as const) {
      expect(createBalancer(name, { random: seededRandom(1) }).name).toBe(name);
    }
    expect(createBalancer({ zoneAware: 'ewma', zone: 'eu' }, { random: seededRandom(1) }).name).toBe('zone-aware(ewma)');
    expect(() => createBalancer('fastest' as never, { random: seededRandom(1) })).toThrow(/unknown balancer/);
    const custom = { name: 'mine', pick: <E>(e: readonly E[]) => e[0] };
    expect(createBalancer(custom, { random: seededRandom(1) })).toBe(custom);
  });
});
