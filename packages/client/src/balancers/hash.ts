import type { Balancer, Endpoint, PickContext } from './types.js';

/**
 * A 32-bit string hash: FNV-1a over UTF-16 code units, then murmur3's finaliser for avalanche.
 *
 * @example
 * hash32('user-42'); // the same number on every run and host
 */
export function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return fmix32(h);
}

function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * Consistent hashing by rendezvous (highest random weight): every (key, instance) pair gets a
 * pseudo-random score and the key goes to the highest. When an instance leaves, only its own keys
 * move (≈ 1/N); when one joins, it takes ≈ 1/(N+1) from the others — and unlike a ring there is no
 * table to rebuild, so it works unchanged on any subset (retries, ejections). Weighted with
 * Schindelhauer–Schomaker's −w / ln(u). Slow start is ignored on purpose: ramping would move keys.
 *
 * Without a key, it falls back to `fallback` (a pick with no affinity).
 *
 * @example
 * const b = new RendezvousHash(new RandomBalancer(systemRandom));
 * b.pick(eligible, { now, all: eligible, key: 'user-42' });
 */
export class RendezvousHash implements Balancer {
  readonly name = 'consistent-hash';
  private readonly idHashes = new Map<string, number>();

  constructor(private readonly fallback: Balancer) {}

  pick<E extends Endpoint>(eligible: readonly E[], ctx: PickContext): E | undefined {
    if (ctx.key === undefined) return this.fallback.pick(eligible, ctx);
    if (eligible.length <= 1) return eligible[0];
    const kh = hash32(ctx.key);
    let best: E | undefined;
    let bestScore = -Infinity;
    for (const e of eligible) {
      const h = fmix32((kh ^ this.idHash(e.id)) + 0x9e3779b9);
      const u = (h + 0.5) / 4294967296;
      const w = Math.max(e.weight, 0);
      const score = w === 0 ? -Infinity : -w / Math.log(u);
      if (score > bestScore || (score === bestScore && best !== undefined && e.id < best.id)) {
        bestScore = score;
        best = e;
      }
    }
    return best ?? eligible[0];
  }

  private idHash(id: string): number {
    let h = this.idHashes.get(id);
    if (h === undefined) {
      if (this.idHashes.size > 100_000) this.idHashes.clear();
      h = hash32(id);
      this.idHashes.set(id, h);
    }
    return h;
  }
}
