/** Check and instance health, worst last. */
export type CheckStatus = 'passing' | 'warning' | 'critical';
export const CHECK_STATUSES: readonly CheckStatus[] = ['passing', 'warning', 'critical'];

/** ttl: pushed by the instance; http/tcp/grpc: pulled by Beacon; script: runs a command (opt-in). */
export type CheckKind = 'ttl' | 'http' | 'tcp' | 'grpc' | 'script';
export const CHECK_KINDS: readonly CheckKind[] = ['ttl', 'http', 'tcp', 'grpc', 'script'];

/** readiness: failing takes the instance out of answers. liveness: failing makes it critical and starts the deregister clock. */
export type CheckRole = 'readiness' | 'liveness';

/** Which front end registered the instance. */
export type InstanceSource = 'api' | 'agent' | 'consul' | 'eureka';
export const INSTANCE_SOURCES: readonly InstanceSource[] = ['api', 'agent', 'consul', 'eureka'];

export interface CheckSpec {
  id: string;
  name: string;
  kind: CheckKind;
  role: CheckRole;
  /** ttl: the instance must report within this time, else the check turns critical ("TTL expired"). */
  ttlMs?: number;
  /** http */
  url?: string;
  method?: string;
  headers?: Record<string, string[]>;
  body?: string;
  tlsSkipVerify?: boolean;
  /** tcp and grpc: `host:port` */
  target?: string;
  grpcService?: string;
  grpcUseTls?: boolean;
  /** script: argv, never run through a shell */
  args?: string[];
  intervalMs?: number;
  timeoutMs?: number;
  successesBeforePassing: number;
  failuresBeforeWarning: number;
  failuresBeforeCritical: number;
  /** Deregister the instance once this check has been critical this long. */
  deregisterCriticalAfterMs?: number;
  notes?: string;
}

export interface CheckState {
  status: CheckStatus;
  /** Last output, capped at {@link LIMITS.checkOutput} bytes. */
  output: string;
  /** When the check entered `status` (ms since epoch). */
  since: number;
  /** Held out for flapping until `until`: reported critical, but the deregister clock waits. */
  holdDown?: { until: number; reason: string };
}

export type Check = CheckSpec & CheckState;

/** A reason attached to a state, with when it began. */
export interface Flag {
  reason: string;
  since: number;
}

/** What a registration asks for, after defaults are filled in. */
export interface InstanceSpec {
  id: string;
  service: string;
  address: string;
  port: number;
  /** Named ports, e.g. `{ "http": 8080, "grpc": 9090 }`. */
  ports: Record<string, number>;
  tags: string[];
  meta: Record<string, string>;
  weight: number;
  zone: string;
  node: string;
  source: InstanceSource;
  /** When set, the instance holds a lease of this length and must heartbeat within it. */
  ttlMs?: number;
}

/** The kinds of change recorded in history. */
export type ChangeKind = 'registered' | 'updated' | 'deregistered' | 'check' | 'maintenance' | 'drain';
export const CHANGE_KINDS: readonly ChangeKind[] = ['registered', 'updated', 'deregistered', 'check', 'maintenance', 'drain'];

/** Why an instance left. */
export type DeregisterCause = 'api' | 'lease_expired' | 'critical_too_long';
export const DEREGISTER_CAUSES: readonly DeregisterCause[] = ['api', 'lease_expired', 'critical_too_long'];

/** The last change made to a record, written with it so every server can tell why it changed. */
export interface ChangeNote {
  kind: ChangeKind;
  reason: string;
  /** When the change was made (ms since epoch). */
  at: number;
  checkId?: string;
  from?: CheckStatus;
  to?: CheckStatus;
  output?: string;
}

/** The durable record of an instance. */
export interface InstanceRecord extends InstanceSpec {
  checks: Check[];
  maintenance?: Flag;
  draining?: Flag;
  registeredAt: number;
  change: ChangeNote;
}

/** Kubernetes EndpointSlice-style conditions. */
export interface Conditions {
  /** Takes new traffic. */
  ready: boolean;
  /** Can still serve traffic it already has (no liveness check is critical). */
  serving: boolean;
  /** Draining: finishing existing work before it leaves. */
  terminating: boolean;
}

/** An instance as readers see it: the record plus derived state and its index. */
export interface Instance extends InstanceRecord {
  status: CheckStatus;
  conditions: Conditions;
  /** Store revision of the last change to this instance. */
  modifyIndex: number;
  createIndex: number;
}

/** An entry of the bounded change history. */
export interface ChangeEvent {
  /** Store revision the change happened at. */
  index: number;
  at: number;
  service: string;
  instanceId: string;
  kind: ChangeKind;
  reason: string;
  checkId?: string;
  from?: CheckStatus;
  to?: CheckStatus;
  output?: string;
  cause?: DeregisterCause;
}

const RANK: Record<CheckStatus, number> = { passing: 0, warning: 1, critical: 2 };

/** The worse of two statuses. */
export function worse(a: CheckStatus, b: CheckStatus): CheckStatus {
  return RANK[a] >= RANK[b] ? a : b;
}

/** Aggregate status: the worst check, and critical while in maintenance. */
export function aggregateStatus(r: Pick<InstanceRecord, 'checks' | 'maintenance'>): CheckStatus {
  let s: CheckStatus = r.maintenance ? 'critical' : 'passing';
  for (const c of r.checks) s = worse(s, c.status);
  return s;
}

/**
 * Every instance's conditions are one of these eight frozen objects: a server holding 100,000
 * instances holds eight, not 100,000 (~45 bytes each).
 */
const CONDITIONS: readonly Conditions[] = Array.from({ length: 8 }, (_, bits) =>
  Object.freeze({ ready: (bits & 1) !== 0, serving: (bits & 2) !== 0, terminating: (bits & 4) !== 0 }),
);

/** Derives conditions the way Kubernetes does for endpoints: ready, serving, terminating. The result is shared and frozen. */
export function deriveConditions(r: Pick<InstanceRecord, 'checks' | 'maintenance' | 'draining'>): Conditions {
  const anyCritical = r.checks.some((c) => c.status === 'critical');
  const livenessCritical = r.checks.some((c) => c.role === 'liveness' && c.status === 'critical');
  const ready = !anyCritical && !r.maintenance && !r.draining;
  return CONDITIONS[(ready ? 1 : 0) | (livenessCritical ? 0 : 2) | (r.draining ? 4 : 0)]!;
}

/** Whether an instance belongs in a "healthy instances" answer: ready, and passing when `onlyPassing`. */
export function inAnswers(i: Pick<Instance, 'status' | 'conditions'>, onlyPassing: boolean): boolean {
  return i.conditions.ready && (!onlyPassing || i.status === 'passing');
}
