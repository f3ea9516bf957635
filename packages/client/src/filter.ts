import { assertServiceName, errors, inAnswers, type Instance } from '@beacon/core';

/** Which instances of a service a view holds. Mirrors the server's query filters. */
export interface DiscoverFilter {
  /** Only ready instances whose checks all pass (default true). `false` keeps every registered instance. */
  passing?: boolean;
  /** Every tag must be present. */
  tags?: string[];
  /** Only this zone (for "prefer my zone" use the zone-aware balancer instead). */
  zone?: string;
  /** Every key must have exactly this value. */
  meta?: Record<string, string>;
  /** Another datacenter's instances (the server follows it; see docs/federation.md). */
  dc?: string;
  /**
   * When the server's datacenter has no ready instance, the nearest DCs (by measured RTT) or the
   * listed ones that have one; the view switches back as soon as the local DC recovers.
   */
  failover?: { nearest?: number; datacenters?: string[] };
}

/** A filter with its defaults filled in. */
export interface ResolvedFilter {
  passing: boolean;
  tags: readonly string[];
  zone: string | undefined;
  meta: readonly (readonly [string, string])[];
  dc: string | undefined;
  /** The failover policy in the server's form (`nearest:2,dc3`). */
  failover: string | undefined;
}

/**
 * Validates a filter and fills in its defaults.
 *
 * @example
 * const f = resolveFilter({ tags: ['v2'] }); // { passing: true, tags: ['v2'], zone: undefined, meta: [] }
 */
export function resolveFilter(f: DiscoverFilter = {}): ResolvedFilter {
  if (f.tags !== undefined && (!Array.isArray(f.tags) || f.tags.some((t) => typeof t !== 'string' || t === ''))) {
    throw errors.invalid('filter.tags must be an array of non-empty strings');
  }
  if (f.zone !== undefined && typeof f.zone !== 'string') throw errors.invalid('filter.zone must be a string');
  const meta = Object.entries(f.meta ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  for (const [k, v] of meta) if (typeof v !== 'string') throw errors.invalid(`filter.meta.${k} must be a string`);
  if (f.dc !== undefined && (typeof f.dc !== 'string' || f.dc === '')) throw errors.invalid('filter.dc must be a datacenter name');
  if (f.dc !== undefined && f.failover !== undefined) throw errors.invalid('filter.dc and filter.failover do not go together: failover starts from the server\'s own datacenter');
  return { passing: f.passing ?? true, tags: [...(f.tags ?? [])].sort(), zone: f.zone, meta, dc: f.dc, failover: failoverSpec(f.failover) };
}

function failoverSpec(p: DiscoverFilter['failover']): string | undefined {
  if (p === undefined) return undefined;
  const nearest = p.nearest ?? 0;
  if (!Number.isInteger(nearest) || nearest < 0) throw errors.invalid('filter.failover.nearest must be a whole number');
  const dcs = p.datacenters ?? [];
  if (!Array.isArray(dcs) || dcs.some((d) => typeof d !== 'string' || d === '' || d.includes(','))) throw errors.invalid('filter.failover.datacenters must be datacenter names');
  const parts = [...(nearest > 0 ? [`nearest:${nearest}`] : []), ...dcs];
  if (parts.length === 0) throw errors.invalid('filter.failover needs nearest or datacenters');
  return parts.join(',');
}

/**
 * Which datacenter's instances a view follows, as query parameters of the watch and of reads.
 *
 * @example
 * scopeQuery(resolveFilter({ dc: 'eu' })); // { dc: 'eu' }
 */
export function scopeQuery(f: ResolvedFilter): Record<string, string> {
  return { ...(f.dc !== undefined ? { dc: f.dc } : {}), ...(f.failover !== undefined ? { failover: f.failover } : {}) };
}

/**
 * Whether an instance belongs in a view with this filter — the same rule the server applies to
 * `GET /api/v1/services/:name/instances`.
 *
 * @example
 * matchesFilter(instance, resolveFilter({ zone: 'eu-1' }));
 */
export function matchesFilter(i: Instance, f: ResolvedFilter): boolean {
  if (f.passing ? !inAnswers(i, true) : false) return false;
  if (f.zone !== undefined && i.zone !== f.zone) return false;
  for (const t of f.tags) if (!i.tags.includes(t)) return false;
  for (const [k, v] of f.meta) if (i.meta[k] !== v) return false;
  return true;
}

/**
 * The query string of a blocking read with this filter.
 *
 * @example
 * filterQuery(resolveFilter({ tags: ['a'] })); // { passing: 'true', tag: ['a'] }
 */
export function filterQuery(f: ResolvedFilter): Record<string, string | string[]> {
  const q: Record<string, string | string[]> = {};
  if (f.passing) q.passing = 'true';
  if (f.tags.length) q.tag = [...f.tags];
  if (f.zone !== undefined) q.zone = f.zone;
  for (const [k, v] of f.meta) q[`meta.${k}`] = v;
  return { ...q, ...scopeQuery(f) };
}

/**
 * A stable key for (service, filter), so equal discoveries can share one view.
 *
 * @example
 * viewKey('payments', resolveFilter()); // 'payments?p||'
 */
export function viewKey(service: string, f: ResolvedFilter): string {
  assertServiceName(service);
  return `${service}?${f.passing ? 'p' : ''}|${f.zone ?? ''}|${f.tags.join(',')}|${f.meta.map(([k, v]) => `${k}=${v}`).join('&')}|${f.dc ?? ''}|${f.failover ?? ''}`;
}
