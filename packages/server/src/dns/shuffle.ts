import type { Random } from '@beacon/core';

/**
 * `count` weighted random orders of `weights.length` items. Clients mostly take the first
 * record, so the first positions are drawn by systematic sampling over the cumulative weights:
 * across the orders, item i comes first in close to weight_i / total of them (within 1/count),
 * which a handful of independent draws would not give. The rest of each order is a weighted
 * shuffle (Efraimidis–Spirakis keys u^(1/w)). Weight 0 gets a very small chance, as RFC 2782
 * asks of SRV weight 0.
 */
export function weightedOrders(weights: readonly number[], count: number, random: Random): number[][] {
  const n = weights.length;
  if (n === 0) return [[]];
  if (n === 1) return [[0]];
  const max = Math.max(...weights);
  const eff = weights.map((w) => (max <= 0 ? 1 : w > 0 ? w : max * 1e-4));
  const total = eff.reduce((a, b) => a + b, 0);
  const offset = random.next();
  const orders: number[][] = [];
  for (let k = 0; k < count; k++) {
    const point = ((k + offset) / count) * total;
    let first = n - 1;
    let acc = 0;
    for (let i = 0; i < n; i++) {
      acc += eff[i]!;
      if (point < acc) {
        first = i;
        break;
      }
    }
    const keyed: { i: number; key: number }[] = [];
    for (let i = 0; i < n; i++) if (i !== first) keyed.push({ i, key: Math.pow(random.next() || Number.MIN_VALUE, 1 / eff[i]!) });
    keyed.sort((a, b) => b.key - a.key);
    orders.push([first, ...keyed.map((x) => x.i)]);
  }
  return orders;
}
