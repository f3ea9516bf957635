/**
 * Rendezvous (highest random weight) hashing: every server computes, for a key, a score per
 * member and picks the highest. All servers that see the same members agree on the owner without
 * talking to each other, and when a member joins or leaves only the keys it wins or held move
 * (about 1/N of them), not everything.
 */
export function rendezvousOwner(key: string, members: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestScore = -1;
  for (const m of members) {
    const s = score(m, key);
    // Ties (1 in 2^32) go to the smaller name, so every server still agrees.
    if (s > bestScore || (s === bestScore && best !== undefined && m < best)) {
      best = m;
      bestScore = s;
    }
  }
  return best;
}

/** A 32-bit score: FNV-1a over both strings, then murmur3's finalizer to spread the bits. */
function score(member: string, key: string): number {
  let h = 0x811c9dc5;
  h = fnv(h, member);
  h = fnv(h ^ 0xff, key);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function fnv(h: number, s: string): number {
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h;
}
