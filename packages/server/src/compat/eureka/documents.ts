import type { Instance } from '@beacon/core';
import { DEFAULT_DATACENTER, EUREKA_LEASE, eurekaStatus, overriddenStatus, type EurekaSide, type EurekaStatus } from './model.js';

export type ActionType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface InstanceDoc {
  instanceId: string;
  hostName: string;
  app: string;
  ipAddr: string;
  status: EurekaStatus;
  overriddenStatus: EurekaStatus;
  port: { $: number; '@enabled': 'true' | 'false' };
  securePort: { $: number; '@enabled': 'true' | 'false' };
  countryId: number;
  dataCenterInfo: EurekaSide['dataCenterInfo'];
  leaseInfo: {
    renewalIntervalInSecs: number;
    durationInSecs: number;
    registrationTimestamp: number;
    lastRenewalTimestamp: number;
    evictionTimestamp: number;
    serviceUpTimestamp: number;
  };
  metadata: Record<string, string>;
  homePageUrl?: string;
  statusPageUrl?: string;
  healthCheckUrl?: string;
  secureHealthCheckUrl?: string;
  vipAddress: string;
  secureVipAddress: string;
  isCoordinatingDiscoveryServer: 'false';
  lastUpdatedTimestamp: string;
  lastDirtyTimestamp: string;
  actionType: ActionType;
}

/**
 * An instance as Eureka servers write it, whoever registered it: ports are always objects, `$`
 * a number and `@enabled` a string, timestamps in lease info numbers and the others strings,
 * empty metadata Java's EmptyMap marker.
 */
export function instanceDoc(inst: Instance, side: EurekaSide | undefined, lastRenewal: number | undefined, action: ActionType = 'ADDED'): InstanceDoc {
  const enabled = (b: boolean) => (b ? 'true' : 'false') as 'true' | 'false';
  const metadata: Record<string, string> = Object.keys(inst.meta).length ? { ...inst.meta } : { '@class': 'java.util.Collections$EmptyMap' };
  const doc: InstanceDoc = {
    instanceId: inst.id,
    hostName: side?.hostName ?? inst.address,
    app: side?.app ?? inst.service.toUpperCase(),
    ipAddr: inst.address,
    status: eurekaStatus(inst, side),
    overriddenStatus: overriddenStatus(inst),
    port: side ? { $: side.port, '@enabled': enabled(side.portEnabled) } : { $: inst.port, '@enabled': 'true' },
    securePort: side
      ? { $: side.securePort, '@enabled': enabled(side.securePortEnabled) }
      : { $: inst.ports.https ?? 443, '@enabled': enabled(inst.ports.https !== undefined) },
    countryId: side?.countryId ?? 1,
    dataCenterInfo: side?.dataCenterInfo ?? { ...DEFAULT_DATACENTER },
    leaseInfo: {
      renewalIntervalInSecs: side?.renewalIntervalSecs ?? EUREKA_LEASE.renewalIntervalSecs,
      durationInSecs: inst.ttlMs ? Math.round(inst.ttlMs / 1000) : EUREKA_LEASE.durationSecs,
      registrationTimestamp: inst.registeredAt,
      lastRenewalTimestamp: lastRenewal ?? inst.registeredAt,
      evictionTimestamp: 0,
      serviceUpTimestamp: side?.serviceUpTimestamp ?? inst.registeredAt,
    },
    metadata,
    vipAddress: side?.vipAddress ?? inst.service,
    secureVipAddress: side?.secureVipAddress ?? inst.service,
    isCoordinatingDiscoveryServer: 'false',
    lastUpdatedTimestamp: String(inst.change?.at ?? inst.registeredAt),
    lastDirtyTimestamp: String(side?.lastDirtyTimestamp ?? inst.registeredAt),
    actionType: action,
  };
  for (const k of ['homePageUrl', 'statusPageUrl', 'healthCheckUrl', 'secureHealthCheckUrl'] as const) if (side?.[k]) doc[k] = side[k];
  return doc;
}

export interface ApplicationDoc {
  name: string;
  instance: InstanceDoc[];
}

/** Groups instance documents by app, leaving out apps without instances, sorted by name. */
export function group(docs: InstanceDoc[]): ApplicationDoc[] {
  const byApp = new Map<string, InstanceDoc[]>();
  for (const d of docs) {
    let list = byApp.get(d.app);
    if (!list) byApp.set(d.app, (list = []));
    list.push(d);
  }
  return [...byApp.keys()].sort().map((name) => ({ name, instance: byApp.get(name)! }));
}

/** `STATUS_count_` for each status with instances, sorted by status name (Eureka's reconciliation hash). */
export function appsHashcode(docs: readonly { status: EurekaStatus }[]): string {
  const counts = new Map<string, number>();
  for (const d of docs) counts.set(d.status, (counts.get(d.status) ?? 0) + 1);
  return [...counts.keys()]
    .sort()
    .map((s) => `${s}_${counts.get(s)}_`)
    .join('');
}

export function applicationsDoc(apps: ApplicationDoc[], hashcode: string, version: string) {
  return { applications: { versions__delta: version, apps__hashcode: hashcode, application: apps } };
}
