import { errors, type Instance } from '@beacon/core';
import type { ServiceEntry } from '../catalog/types.js';
import { assertDatacenterName } from './config.js';
import type { Federation } from './federation.js';

/** Where to look when the local DC has no ready instance: the `nearest` N other DCs by RTT, then `datacenters` in order. */
export interface FailoverPolicy {
  nearest: number;
  datacenters: string[];
}

const MAX_NEAREST = 64;

/**
 * Parses the native form `nearest:2`, `dc2,dc3` or both (`nearest:1,dc3`).
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

/** An answer and the DC it came from; `failovers`: how many DCs were tried besides the local one. */
export interface FailoverAnswer {
  datacenter: string;
  entry: ServiceEntry;
  instances: Instance[];
  failovers: number;
}

/**
 * Answers from the local DC when `pick` leaves a ready instance there; otherwise from the first DC,
 * in policy order, where it does (Consul's prepared-query rule: the nearest N by measured RTT,
 * then the listed ones not tried yet). Unknown and not-yet-followed DCs are skipped. With nothing
 * anywhere, the local (empty) answer.
 */
export function answerWithFailover(fed: Federation, service: string, policy: FailoverPolicy | undefined, pick: (instances: readonly Instance[]) => Instance[]): FailoverAnswer {
  const local = fed.datacenter(undefined);
  const localEntry = local.catalog.service(service);
  const localPick = pick(localEntry.instances);
  const home: FailoverAnswer = { datacenter: local.name, entry: localEntry, instances: localPick, failovers: 0 };
  if (!policy || localPick.some(ready)) return home;
  let failovers = 0;
  for (const dc of failoverOrder(fed, policy)) {
    const view = fed.remoteView(dc);
    if (!view?.synced) continue;
    failovers++;
    const entry = view.service(service);
    const picked = pick(entry.instances);
    if (picked.some(ready)) return { datacenter: dc, entry, instances: picked, failovers };
  }
  return { ...home, failovers };
}

const ready = (i: Instance) => i.conditions.ready;

/** The remote DCs a policy tries, in order, without repeats. */
export function failoverOrder(fed: Federation, policy: FailoverPolicy): string[] {
  const order = fed.remoteNamesByRtt().slice(0, policy.nearest);
  for (const dc of policy.datacenters) if (dc !== fed.localName && !order.includes(dc)) order.push(dc);
  return order;
}
