import { errors } from './errors.js';

/** A datacenter name: a DNS label, as it appears in `web.service.<dc>.consul`. */
const DC_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

export function assertDatacenterName(name: string): void {
  if (!DC_NAME.test(name)) throw errors.invalid(`invalid datacenter name ${JSON.stringify(name)}: use a DNS label (a-z, 0-9, -)`);
}

/** Where to look when the local DC has no ready instance: the `nearest` N other DCs by RTT, then `datacenters` in order. */
export interface FailoverPolicy {
  nearest: number;
  datacenters: string[];
}

const MAX_NEAREST = 64;

/**
 * Parses the native form `nearest:2`, `dc2,dc3` or both (`nearest:1,dc3`), as the server's
 * `--failover`, the `?failover=` query and the proxy's `--failover` take it.
 *
 * @example
 * parseFailover('nearest:2'); // { nearest: 2, datacenters: [] }
 */
export function parseFailover(spec: string): FailoverPolicy {
  const policy: FailoverPolicy = { nearest: 0, datacenters: [] };
  for (const raw of spec.split(',')) {
    const part = raw.trim().toLowerCase();
    if (part === '') continue;
    const m = /^nearest:(\d{1,3})$/.exec(part);
    if (m) {
      policy.nearest = Math.min(Number(m[1]), MAX_NEAREST);
      continue;
    }
    if (part.startsWith('nearest')) throw errors.invalid(`failover ${JSON.stringify(spec)}: write nearest:N`);
    assertDatacenterName(part);
    if (!policy.datacenters.includes(part)) policy.datacenters.push(part);
  }
  if (policy.nearest === 0 && policy.datacenters.length === 0) throw errors.invalid(`failover ${JSON.stringify(spec)}: give nearest:N and/or datacenter names`);
  return policy;
}

/**
 * Parses a repeatable `SERVICE=POLICY` flag (`--failover web=nearest:2`) into a policy per service.
 *
 * @example
 * parseFailoverFlags(['web=nearest:1,eu-west']); // { web: { nearest: 1, datacenters: ['eu-west'] } }
 */
export function parseFailoverFlags(specs: readonly string[]): Record<string, FailoverPolicy> {
  const out: Record<string, FailoverPolicy> = {};
  for (const spec of specs) {
    const eq = spec.indexOf('=');
    if (eq <= 0) throw errors.invalid(`--failover ${spec}: use SERVICE=nearest:N or SERVICE=dc2,dc3`);
    out[spec.slice(0, eq).trim()] = parseFailover(spec.slice(eq + 1));
  }
  return out;
}
