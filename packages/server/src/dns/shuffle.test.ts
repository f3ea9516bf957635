import { describe, expect, it } from 'vitest';
import { seededRandom } from '@beacon/core';
import { weightedOrders } from './shuffle.js';

describe('weightedOrders', () => {
  it('returns permutations whose first items follow the weights within 1/count', () => {
    const weights = [5, 3, 1, 1];
    const orders = weightedOrders(weights, 20, seededRandom(3));
    expect(orders).toHaveLength(20);
    for (const o of orders) expect([...o].sort()).toEqual([0, 1, 2, 3]);
    const first = [0, 0, 0, 0];
    for (const o of orders) first[o[0]!]!++;
    expect(first).toEqual([10, 6, 2, 2]);
  });

  it('gives weight 0 a very small chance and treats all-zero as equal', () => {
    const firsts = new Set(weightedOrders([0, 0, 0], 30, seededRandom(1)).map((o) => o[0]));
    expect(firsts.size).toBe(3);
    const orders = weightedOrders([1, 0], 16, seededRandom(2));
    expect(orders.every((o) => o[0] === 0)).toBe(true);
  });

  it('handles the trivial cases', () => {
    expect(weightedOrders([], 8, seededRandom(1))).toEqual([[]]);
    expect(weightedOrders([4], 8, seededRandom(1))).toEqual([[0]]);
  });
});
