import { randomInt, type Random } from '@beacon/core';

/** A version 4 UUID drawn from the injected randomness (session and event ids). */
export function uuid(random: Random): string {
  const b = new Array<number>(16);
  for (let i = 0; i < 16; i++) b[i] = randomInt(random, 256);
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = b.map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
