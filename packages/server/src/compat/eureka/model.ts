import { errors, isServiceName, type CheckStatus, type Instance } from '@beacon/core';
import type { CheckInput, RegistrationInput } from '../../registry/normalize.js';

export type EurekaStatus = 'UP' | 'DOWN' | 'STARTING' | 'OUT_OF_SERVICE' | 'UNKNOWN';
export const EUREKA_STATUSES: readonly EurekaStatus[] = ['UP', 'DOWN', 'STARTING', 'OUT_OF_SERVICE', 'UNKNOWN'];

export function isEurekaStatus(s: unknown): s is EurekaStatus {
  return typeof s === 'string' && EUREKA_STATUSES.includes(s as EurekaStatus);
}

/** Eureka defaults: renew every 30 s, lease of 90 s. */
export const EUREKA_LEASE = { renewalIntervalSecs: 30, durationSecs: 90 } as const;
/** The status check's TTL: it only carries the status the client reports; the lease is what expires. */
export const STATUS_CHECK_TTL_MS = 24 * 3_600_000;
export const OVERRIDE_REASON = 'Eureka status override: ';

export const DEFAULT_DATACENTER = { '@class': 'com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo', name: 'MyOwn' } as const;

/** What Eureka knows of an instance and Beacon's model does not; kept beside the instance, on its lease. */
export interface EurekaSide {
  app: string;
  hostName: string;
  status: EurekaStatus;
  port: number;
  portEnabled: boolean;
  securePort: number;
  securePortEnabled: boolean;
  vipAddress?: string;
  secureVipAddress?: string;
  homePageUrl?: string;
  statusPageUrl?: string;
  healthCheckUrl?: string;
  secureHealthCheckUrl?: string;
  countryId: number;
  dataCenterInfo: { '@class': string; name: string; metadata?: Record<string, string> };
  renewalIntervalSecs: number;
  lastDirtyTimestamp: number;
  serviceUpTimestamp?: number;
}

/** Eureka app names are upper-case and free-form; Beacon services are DNS labels. */
export function appToService(app: string): string | undefined {
  const s = app.toLowerCase().replace(/[_.]/g, '-');
  return isServiceName(s) ? s : undefined;
}

export function statusCheckId(instanceId: string): string {
  return `eureka:${instanceId}`;
}

export function statusToCheck(s: EurekaStatus): CheckStatus {
  return s === 'UP' ? 'passing' : 'critical';
}

function obj(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw errors.invalid(`${what} must be a JSON object`);
  return v as Record<string, unknown>;
}

function str(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  return undefined;
}

/** Lenient on input: `8080`, `"8080"`, `{"$":8080}`, `{"$":"8080","@enabled":"true"}`, `@enabled` boolean or string. */
function port(v: unknown, what: string, dflt: { port: number; enabled: boolean }): { port: number; enabled: boolean } {
  if (v === undefined || v === null) return dflt;
  let raw: unknown = v;
  let enabled: unknown = true;
  if (typeof v === 'object') {
    raw = (v as Record<string, unknown>).$;
    enabled = (v as Record<string, unknown>)['@enabled'] ?? true;
  }
  const n = typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : raw;
  if (!Number.isInteger(n) || (n as number) < 0 || (n as number) > 65535) throw errors.invalid(`${what} must be a port number from 0 to 65535`);
  return { port: n as number, enabled: enabled === true || enabled === 'true' };
}

export interface ParsedRegistration {
  input: RegistrationInput;
  side: EurekaSide;
}

/** Reads a registration body (`{"instance":{…}}`), checking what Eureka's server checks. */
export function parseRegistration(body: unknown, pathApp: string, now: number): ParsedRegistration {
  const root = obj(body, 'body');
  const doc = obj(root.instance ?? root, 'instance');
  const hostName = str(doc.hostName);
  const instanceId = str(doc.instanceId) || hostName;
  const ipAddr = str(doc.ipAddr);
  const app = str(doc.app);
  if (!instanceId) throw errors.invalid('Missing instanceId');
  if (!hostName) throw errors.invalid('Missing hostname');
  if (!ipAddr) throw errors.invalid('Missing ip address');
  if (!app) throw errors.invalid('Missing appName');
  if (app.toUpperCase() !== pathApp.toUpperCase()) throw errors.invalid(`Mismatched appName, expecting ${pathApp.toUpperCase()} but was ${app.toUpperCase()}`);
  const dci = doc.dataCenterInfo === undefined || doc.dataCenterInfo === null ? undefined : obj(doc.dataCenterInfo, 'dataCenterInfo');
  if (!dci || !str(dci.name)) throw errors.invalid('Missing dataCenterInfo Name');
  const service = appToService(app);
  if (!service) throw errors.invalid(`Invalid app name ${JSON.stringify(app.slice(0, 80))}: Beacon service names are DNS labels (letters, digits, '-', '_' or '.', at most 63 characters)`);

  const p = port(doc.port, 'port', { port: 0, enabled: true });
  const sp = port(doc.securePort, 'securePort', { port: 443, enabled: false });
  const lease = doc.leaseInfo === undefined || doc.leaseInfo === null ? {} : obj(doc.leaseInfo, 'leaseInfo');
  const duration = lease.durationInSecs === undefined ? EUREKA_LEASE.durationSecs : Number(lease.durationInSecs);
  if (!Number.isFinite(duration) || duration < 1 || duration > 86_400) throw errors.invalid('leaseInfo.durationInSecs must be from 1 to 86400');
  const renewal = lease.renewalIntervalInSecs === undefined ? EUREKA_LEASE.renewalIntervalSecs : Number(lease.renewalIntervalInSecs);

  const meta: Record<string, string> = {};
  if (doc.metadata !== undefined && doc.metadata !== null) {
    for (const [k, v] of Object.entries(obj(doc.metadata, 'metadata'))) {
      if (k === '@class') continue;
      const s = str(v) ?? (typeof v === 'boolean' ? String(v) : undefined);
      if (s === undefined) throw errors.invalid(`metadata.${k} must be a string`);
      meta[k] = s;
    }
  }
  const dcMeta: Record<string, string> = {};
  if (dci.metadata && typeof dci.metadata === 'object') for (const [k, v] of Object.entries(dci.metadata)) if (str(v) !== undefined) dcMeta[k] = str(v)!;
  const status = isEurekaStatus(doc.status) ? doc.status : 'UP';

  const ports: Record<string, number> = {};
  if (p.enabled) ports.http = p.port;
  if (sp.enabled) ports.https = sp.port;
  const check: CheckInput = {
    id: statusCheckId(instanceId),
    name: 'Eureka status',
    kind: 'ttl',
    role: 'liveness',
    ttlMs: STATUS_CHECK_TTL_MS,
    status: statusToCheck(status),
    notes: 'The status the Eureka client reports (UP passes; DOWN, STARTING and OUT_OF_SERVICE fail); its lease is what expires.',
  };
  // A node name is a DNS-safe label run; an IPv6 ipAddr (colons) is spelled with dashes.
  const node = /^[A-Za-z0-9_.-]{1,253}$/.test(hostName) && hostName !== '.' && hostName !== '..' ? hostName : ipAddr.replace(/[^A-Za-z0-9_.-]/g, '-');
  const input: RegistrationInput = {
    id: instanceId,
    service,
    address: ipAddr,
    port: p.enabled || !sp.enabled ? p.port : sp.port,
    ports,
    meta,
    zone: dcMeta['availability-zone'] ?? meta.zone ?? '',
    node,
    source: 'eureka',
    ttlMs: Math.round(duration * 1000),
    checks: [check],
  };
  const side: EurekaSide = {
    app: app.toUpperCase(),
    hostName,
    status,
    port: p.port,
    portEnabled: p.enabled,
    securePort: sp.port,
    securePortEnabled: sp.enabled,
    countryId: Number.isInteger(doc.countryId) ? (doc.countryId as number) : 1,
    dataCenterInfo: { '@class': str(dci['@class']) ?? DEFAULT_DATACENTER['@class'], name: str(dci.name)!, ...(Object.keys(dcMeta).length ? { metadata: dcMeta } : {}) },
    renewalIntervalSecs: Number.isFinite(renewal) && renewal > 0 ? renewal : EUREKA_LEASE.renewalIntervalSecs,
    lastDirtyTimestamp: Number(str(doc.lastDirtyTimestamp) ?? now) || now,
  };
  for (const k of ['vipAddress', 'secureVipAddress', 'homePageUrl', 'statusPageUrl', 'healthCheckUrl', 'secureHealthCheckUrl'] as const) {
    const v = str(doc[k]);
    if (v) side[k] = v;
  }
  if (status === 'UP') side.serviceUpTimestamp = now;
  return { input, side };
}

/** The status Eureka clients see: an override first, draining never UP, then what the instance reports and its health. */
export function eurekaStatus(inst: Instance, side: EurekaSide | undefined): EurekaStatus {
  if (inst.maintenance) return overriddenStatus(inst) === 'UNKNOWN' ? 'OUT_OF_SERVICE' : overriddenStatus(inst);
  if (inst.draining) return 'OUT_OF_SERVICE';
  if (side && side.status !== 'UP') return side.status;
  return inst.conditions.ready ? 'UP' : 'DOWN';
}

export function overriddenStatus(inst: Instance): EurekaStatus {
  const r = inst.maintenance?.reason;
  if (!r) return 'UNKNOWN';
  if (r.startsWith(OVERRIDE_REASON)) {
    const s = r.slice(OVERRIDE_REASON.length);
    if (isEurekaStatus(s)) return s;
  }
  return 'OUT_OF_SERVICE';
}
