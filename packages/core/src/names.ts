import { errors } from './errors.js';

/** Bounds on what one request may carry; enforced at the edge and again by the registry. */
export const LIMITS = {
  bodyBytes: 256 * 1024,
  serviceName: 63,
  instanceId: 128,
  checkId: 192,
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
  /** Estimated bytes the history may hold (check outputs and reasons included); well above what 10,000 ordinary entries take. */
  historyBytes: 64 * 1024 * 1024,
  listLimit: 10_000,
  /** Open SSE streams and parked blocking queries per server; beyond them: 429. */
  watchStreams: 20_000,
  blockingQueries: 50_000,
} as const;

/** A DNS label: lower-case letters, digits and hyphens, not at either end. */
export const SERVICE_NAME_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
export const PORT_NAME_RE = /^[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?$/;

export function isServiceName(s: string): boolean {
  return SERVICE_NAME_RE.test(s);
}

export function assertServiceName(s: string): void {
  if (!isServiceName(s))
    throw errors.invalid(`invalid service name ${JSON.stringify(s.slice(0, 80))}: use a DNS label (a-z, 0-9, '-', at most 63 characters)`);
}

/**
 * Characters no id may hold: control characters (C0, DEL, C1: NUL, CR, LF…), Unicode format
 * characters (bidi overrides such as U+202E, zero-width joiners) and line/paragraph separators.
 */
const UNSAFE_ID_CHAR = /[\p{Cc}\p{Cf}\u2028\u2029]/u;

/**
 * The one id rule, for instance and check ids on every API. Consul accepts nearly any string as a
 * service ID (Patroni registers `<scope>/<name>`), so the rule refuses only what is unsafe in a
 * URL path, a store key, a log line or a terminal: control and format characters, leading or
 * trailing spaces, `.` and `..`, and more than `max` characters. `/` is allowed; the native API
 * takes such ids URL-encoded (`%2F`).
 */
export function assertId(s: string, what: string, max: number): void {
  const problem =
    typeof s !== 'string' || s.length === 0 || s.length > max ? `must be 1-${max} characters` :
    s === '.' || s === '..' ? 'may not be "." or ".."' :
    UNSAFE_ID_CHAR.test(s) ? 'may not contain control or format characters' :
    s.trim() !== s ? 'may not begin or end with whitespace' :
    undefined;
  if (problem) throw errors.invalid(`invalid ${what} ${JSON.stringify(String(s).slice(0, 80))}: ${problem}`);
}

const NODE_NAME_RE = /^[A-Za-z0-9_.-]{1,253}$/;

/** Node names become store keys and DNS names (`<node>.node.consul`), so they are stricter than ids. */
export function assertNodeName(name: string): void {
  if (typeof name !== 'string' || !NODE_NAME_RE.test(name) || name === '.' || name === '..')
    throw errors.invalid(`invalid node name ${JSON.stringify(String(name).slice(0, 80))}: 1-253 characters of A-Z a-z 0-9 _ . -, not "." or ".."`);
}

export function assertInstanceId(s: string): void {
  assertId(s, 'instance id', LIMITS.instanceId);
}

/** The id an instance gets when the registration gives none: stable across re-registrations. */
export function deriveInstanceId(service: string, address: string, port: number): string {
  // The address is canonical by now (an IP literal or a host name), so it is id-safe as it is.
  return `${service}-${address}-${port}`.slice(0, LIMITS.instanceId);
}
