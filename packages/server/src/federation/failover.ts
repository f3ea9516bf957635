import { type FailoverPolicy, type Instance } from '@beacon/core';
import type { ServiceEntry } from '../catalog/types.js';
import type { Federation } from './federation.js';

// Parsed in @beacon/core: the proxy and the CLI take the same policy without loading the server.
export { parseFailover, type FailoverPolicy } from '@beacon/core';

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
