import type { Instance } from '@beacon/core';

/**
 * Per-service cluster policy read from instance meta (`xds.*` keys; docs/xds.md, "Service meta").
 * Beacon has no service-level record, so the first instance by id that carries a key decides it:
 * every server of a cluster reads the same answer from the same catalog.
 */
export interface ClusterPolicy {
  lb: 'ROUND_ROBIN' | 'RING_HASH';
  ring?: { min?: number; max?: number };
  outlier?: {
    intervalMs?: number;
    baseEjectionMs?: number;
    maxEjectionPercent?: number;
    consecutive5xx?: number;
    failurePercentageThreshold?: number;
  };
  breakers?: { maxConnections?: number; maxPendingRequests?: number; maxRequests?: number; maxRetries?: number };
}

/** A meta value the policy could not use: the key, the value and why. */
export interface PolicyProblem {
  key: string;
  value: string;
  reason: string;
}

const INT_KEYS = {
  'xds.ring-min': { max: 8_388_608 },
  'xds.ring-max': { max: 8_388_608 },
  'xds.outlier.interval-ms': { max: 86_400_000 },
  'xds.outlier.base-ejection-ms': { max: 86_400_000 },
  'xds.outlier.max-ejection-percent': { max: 100 },
  'xds.outlier.consecutive-5xx': { max: 1_000_000 },
  'xds.outlier.failure-percentage-threshold': { max: 100 },
  'xds.max-connections': { max: 4_294_967_295 },
  'xds.max-pending-requests': { max: 4_294_967_295 },
  'xds.max-requests': { max: 4_294_967_295 },
  'xds.max-retries': { max: 4_294_967_295 },
} as const;
type IntKey = keyof typeof INT_KEYS;

export function clusterPolicy(instances: readonly Instance[]): { policy: ClusterPolicy; problems: PolicyProblem[] } {
  const problems: PolicyProblem[] = [];
  const first = (key: string): string | undefined => {
    for (const i of instances) if (Object.hasOwn(i.meta, key)) return i.meta[key];
    return undefined;
  };
  const int = (key: IntKey): number | undefined => {
    const raw = first(key);
    if (raw === undefined) return undefined;
    const n = /^\d{1,10}$/.test(raw) ? Number(raw) : NaN;
    if (!Number.isSafeInteger(n) || n > INT_KEYS[key].max) {
      problems.push({ key, value: raw, reason: `an integer from 0 to ${INT_KEYS[key].max} was expected` });
      return undefined;
    }
    return n;
  };
  const policy: ClusterPolicy = { lb: 'ROUND_ROBIN' };
  const lb = first('xds.lb-policy');
  switch (lb) {
    case undefined:
    case 'round_robin':
      break;
    case 'ring_hash':
      policy.lb = 'RING_HASH';
      break;
    default:
      problems.push({ key: 'xds.lb-policy', value: lb, reason: 'round_robin or ring_hash was expected' });
  }
  if (policy.lb === 'RING_HASH') policy.ring = compact({ min: int('xds.ring-min'), max: int('xds.ring-max') });
  const outlier = compact({
    intervalMs: int('xds.outlier.interval-ms'),
    baseEjectionMs: int('xds.outlier.base-ejection-ms'),
    maxEjectionPercent: int('xds.outlier.max-ejection-percent'),
    consecutive5xx: int('xds.outlier.consecutive-5xx'),
    failurePercentageThreshold: int('xds.outlier.failure-percentage-threshold'),
  });
  if (Object.keys(outlier).length > 0) policy.outlier = outlier;
  const breakers = compact({
    maxConnections: int('xds.max-connections'),
    maxPendingRequests: int('xds.max-pending-requests'),
    maxRequests: int('xds.max-requests'),
    maxRetries: int('xds.max-retries'),
  });
  if (Object.keys(breakers).length > 0) policy.breakers = breakers;
  return { policy, problems };
}

function compact<T extends Record<string, number | undefined>>(o: T): { [K in keyof T]?: number } {
  const out: { [K in keyof T]?: number } = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k as keyof T] = v;
  return out;
}
