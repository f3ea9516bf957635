import { errors } from './errors.js';

/** Bounds on what one request may carry; enforced at the edge and again by the registry. */
export const LIMITS = {
  bodyBytes: 256 * 1024,
  serviceName: 63,
  instanceId: 128,
  tags: 64,
  tagLength: 255,
  metaKeys: 64,
  metaKeyLength: 128,
  metaValueLength: 512,
  ports: 32,
  checks: 16,
  checkOutput: 4096,
  reason: 1024,
  address: 253,
  zone: 63,
  node: 253,
  historySize: 10_000,
  listLimit: 10_000,
  /** Open SSE streams and parked blocking queries per server; beyond them: 429. */
  watchStreams: 20_000,
  blockingQueries: 50_000,
} as const;

/** A DNS label: lower-case letters, digits and hyphens, not at either end. */
export const SERVICE_NAME_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
export const INSTANCE_ID_RE = /^[A-Za-z0-9_.:@-]{1,128}$/;
export const PORT_NAME_RE = /^[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?$/;

export function isServiceName(s: string): boolean {
  return SERVICE_NAME_RE.test(s);
}

export function assertServiceName(s: string): void {
  if (!isServiceName(s))
    throw errors.invalid(`invalid service name ${JSON.stringify(s.slice(0, 80))}: use a DNS label (a-z, 0-9, '-', at most 63 characters)`);
}

export function assertInstanceId(s: string): void {
  if (!INSTANCE_ID_RE.test(s))
    throw errors.invalid(`invalid instance id ${JSON.stringify(s.slice(0, 80))}: 1-128 characters of A-Z a-z 0-9 _ . : @ -`);
}

/** The id an instance gets when the registration gives none: stable across re-registrations. */
export function deriveInstanceId(service: string, address: string, port: number): string {
  const addr = address.replace(/[^A-Za-z0-9_.:@-]/g, '_');
  return `${service}-${addr}-${port}`.slice(0, LIMITS.instanceId);
}
