import {
  assertId,
  assertInstanceId,
  assertNodeName,
  assertServiceName,
  CHECK_KINDS,
  deriveInstanceId,
  errors,
  INSTANCE_SOURCES,
  LIMITS,
  TTL_BOUNDS,
  PORT_NAME_RE,
  type CheckInput,
  type CheckSpec,
  type CheckStatus,
  type InstanceSpec,
  type RegistrationInput,
} from '@beacon/core';

import { formatHostPort } from '../addr.js';
import { HOST_RULE, parseHost, splitHostPort } from '../health/addr.js';

export type { CheckInput, RegistrationInput } from '@beacon/core';

export interface NormalizedRegistration {
  spec: InstanceSpec;
  checks: CheckSpec[];
  /** Initial statuses asked for by the registration, by check id. */
  initial: Map<string, CheckStatus>;
}

export const INTERVAL_BOUNDS = { minMs: 100, maxMs: 24 * 3_600_000 } as const;
const DEFAULT_INTERVAL_MS = 10_000;
const DEFAULT_TIMEOUT_MS = 10_000;

/**
 * Fills defaults and checks every rule the schema at the edge cannot express. Throws
 * `invalid_argument` naming the field; never returns a half-valid registration.
 */
export function normalizeRegistration(input: RegistrationInput, defaults: { node: string }): NormalizedRegistration {
  assertServiceName(input.service);
  const address = canonicalAddress(input.address);
  assertPort(input.port, 'port');
  const id = input.id ?? deriveInstanceId(input.service, address, input.port);
  assertInstanceId(id);

  const tags = [...new Set(input.tags ?? [])];
  if (tags.length > LIMITS.tags) throw errors.invalid(`at most ${LIMITS.tags} tags`);
  for (const t of tags) if (typeof t !== 'string' || !t || t.length > LIMITS.tagLength) throw errors.invalid(`tags must be non-empty strings of at most ${LIMITS.tagLength} characters`);

  const meta = input.meta ?? {};
  const metaKeys = Object.keys(meta);
  if (metaKeys.length > LIMITS.metaKeys) throw errors.invalid(`at most ${LIMITS.metaKeys} meta keys`);
  for (const k of metaKeys) {
    if (!k || k.length > LIMITS.metaKeyLength) throw errors.invalid(`meta keys must be 1-${LIMITS.metaKeyLength} characters`);
    const v = meta[k];
    if (typeof v !== 'string' || v.length > LIMITS.metaValueLength) throw errors.invalid(`meta.${k} must be a string of at most ${LIMITS.metaValueLength} characters`);
  }

  const ports = input.ports ?? {};
  if (Object.keys(ports).length > LIMITS.ports) throw errors.invalid(`at most ${LIMITS.ports} named ports`);
  for (const [name, p] of Object.entries(ports)) {
    if (!PORT_NAME_RE.test(name)) throw errors.invalid(`port name ${JSON.stringify(name)} must be a lower-case label of at most 15 characters`);
    assertPort(p, `ports.${name}`);
  }

  const weight = input.weight ?? 1;
  if (!Number.isInteger(weight) || weight < 0 || weight > 65535) throw errors.invalid('weight must be an integer from 0 to 65535');
  const zone = input.zone ?? '';
  if (zone.length > LIMITS.zone) throw errors.invalid(`zone must be at most ${LIMITS.zone} characters`);
  const node = input.node || defaults.node;
  assertNodeName(node);
  const source = input.source ?? 'api';
  if (!INSTANCE_SOURCES.includes(source)) throw errors.invalid(`source must be one of ${INSTANCE_SOURCES.join(', ')}`);
  if (input.ttlMs !== undefined) assertRange(input.ttlMs, TTL_BOUNDS.minMs, TTL_BOUNDS.maxMs, 'ttlMs');

  const rawChecks = input.checks ?? [];
  if (rawChecks.length > LIMITS.checks) throw errors.invalid(`at most ${LIMITS.checks} checks per instance`);
  const checks: CheckSpec[] = [];
  const initial = new Map<string, CheckStatus>();
  rawChecks.forEach((c, n) => {
    const spec = normalizeCheck(c, id, rawChecks.length > 1 ? n + 1 : 0);
    if (checks.some((x) => x.id === spec.id)) throw errors.invalid(`duplicate check id ${JSON.stringify(spec.id)}`);
    checks.push(spec);
    if (c.status !== undefined) initial.set(spec.id, c.status);
  });

  const spec: InstanceSpec = { id, service: input.service, address, port: input.port, ports, tags, meta, weight, zone, node, source };
  if (input.ttlMs !== undefined) spec.ttlMs = input.ttlMs;
  return { spec, checks, initial };
}

/** A node-level check: the same rules as an instance's, and an id of its own (it has no instance to derive one from). */
export function normalizeNodeCheck(c: CheckInput): CheckSpec {
  if (!c.id) throw errors.invalid('a node check needs an id');
  return normalizeCheck(c, '', 0);
}

function normalizeCheck(c: CheckInput, instanceId: string, ordinal: number): CheckSpec {
  if (!CHECK_KINDS.includes(c.kind)) throw errors.invalid(`check kind must be one of ${CHECK_KINDS.join(', ')}`);
  // Consul's naming, so ids are predictable for `check pass` calls: service:<id>[:<n>].
  const id = c.id ?? (ordinal ? `service:${instanceId}:${ordinal}` : `service:${instanceId}`);
  assertId(id, 'check id', LIMITS.checkId);
  const role = c.role ?? 'liveness';
  if (role !== 'liveness' && role !== 'readiness') throw errors.invalid('check role must be readiness or liveness');
  const spec: CheckSpec = {
    id,
    name: c.name ?? `${c.kind} check`,
    kind: c.kind,
    role,
    successesBeforePassing: count(c.successesBeforePassing, 1, 'successesBeforePassing'),
    failuresBeforeCritical: count(c.failuresBeforeCritical, 1, 'failuresBeforeCritical'),
    failuresBeforeWarning: 0,
  };
  spec.failuresBeforeWarning = count(c.failuresBeforeWarning, spec.failuresBeforeCritical, 'failuresBeforeWarning');
  if (c.notes !== undefined) spec.notes = c.notes.slice(0, LIMITS.reason);
  if (c.deregisterCriticalAfterMs !== undefined) {
    assertRange(c.deregisterCriticalAfterMs, TTL_BOUNDS.minMs, 30 * 24 * 3_600_000, 'deregisterCriticalAfterMs');
    spec.deregisterCriticalAfterMs = c.deregisterCriticalAfterMs;
  }
  const active = (): void => {
    spec.intervalMs = c.intervalMs ?? DEFAULT_INTERVAL_MS;
    assertRange(spec.intervalMs, INTERVAL_BOUNDS.minMs, INTERVAL_BOUNDS.maxMs, 'intervalMs');
    spec.timeoutMs = c.timeoutMs ?? Math.min(DEFAULT_TIMEOUT_MS, spec.intervalMs);
    assertRange(spec.timeoutMs, 10, INTERVAL_BOUNDS.maxMs, 'timeoutMs');
  };
  switch (c.kind) {
    case 'ttl':
      if (c.ttlMs === undefined) throw errors.invalid(`check ${id}: ttl checks need ttlMs`);
      assertRange(c.ttlMs, TTL_BOUNDS.minMs, TTL_BOUNDS.maxMs, 'ttlMs');
      spec.ttlMs = c.ttlMs;
      break;
    case 'http': {
      let url: URL;
      try {
        url = new URL(c.url ?? '');
      } catch {
        throw errors.invalid(`check ${id}: http checks need a valid url`);
      }
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw errors.invalid(`check ${id}: url must be http or https`);
      if (!parseHost(url.hostname)) throw errors.invalid(`check ${id}: url host ${JSON.stringify(url.hostname.slice(0, 80))} ${HOST_RULE}`);
      spec.url = url.toString();
      spec.method = (c.method ?? 'GET').toUpperCase();
      if (!/^[A-Z]{1,16}$/.test(spec.method)) throw errors.invalid(`check ${id}: invalid method`);
      if (c.headers !== undefined) spec.headers = checkHeaders(c.headers, id);
      if (c.body !== undefined) spec.body = c.body;
      if (c.tlsSkipVerify !== undefined) spec.tlsSkipVerify = c.tlsSkipVerify;
      active();
      break;
    }
    case 'tcp':
    case 'grpc':
      spec.target = canonicalTarget(c.target, id, c.kind);
      if (c.kind === 'grpc') {
        if (c.grpcService !== undefined) spec.grpcService = c.grpcService;
        if (c.grpcUseTls !== undefined) spec.grpcUseTls = c.grpcUseTls;
      }
      active();
      break;
    case 'script':
      if (!Array.isArray(c.args) || c.args.length === 0 || c.args.some((a) => typeof a !== 'string'))
        throw errors.invalid(`check ${id}: script checks need args (an argv array)`);
      spec.args = c.args;
      active();
      break;
  }
  return spec;
}

function assertPort(p: unknown, field: string): void {
  if (!Number.isInteger(p) || (p as number) < 0 || (p as number) > 65535) throw errors.invalid(`${field} must be an integer from 0 to 65535`);
}

function assertRange(v: unknown, min: number, max: number, field: string): void {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) throw errors.invalid(`${field} must be a number from ${min} to ${max}`);
}

function count(v: number | undefined, dflt: number, field: string): number {
  if (v === undefined) return dflt;
  if (!Number.isInteger(v) || v < 1 || v > 100) throw errors.invalid(`${field} must be an integer from 1 to 100`);
  return v;
}

/**
 * An instance address is an IP literal or a DNS host name, stored in canonical form (see
 * parseHost): what is stored is what DNS answers, checks and clients all read back.
 */
export function canonicalAddress(address: unknown): string {
  if (typeof address !== 'string' || !address) throw errors.invalid(`address is required: an IP literal or a DNS host name of at most ${LIMITS.address} characters`);
  const host = parseHost(address);
  if (!host) throw errors.invalid(`address ${JSON.stringify(address.slice(0, 80))} ${HOST_RULE}`);
  return host.text;
}

/** `host:port[/service]` with the host canonical, so the policy and the runner read the same host. */
function canonicalTarget(target: string | undefined, id: string, kind: string): string {
  const hp = target === undefined ? undefined : splitHostPort(target);
  if (!hp) throw errors.invalid(`check ${id}: ${kind} checks need target host:port`);
  const host = parseHost(hp.host);
  if (!host) throw errors.invalid(`check ${id}: target host ${JSON.stringify(hp.host.slice(0, 80))} ${HOST_RULE}`);
  if (/[\s\p{Cc}]/u.test(hp.rest)) throw errors.invalid(`check ${id}: the gRPC service after the target may not contain spaces or control characters`);
  return formatHostPort(host.text, hp.port) + (hp.rest ? `/${hp.rest}` : '');
}

/** RFC 9110: a field name is a token; a value holds no CR, LF, NUL or other control but tab. */
const HEADER_NAME_RE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const HEADER_VALUE_BAD = /[\u0000-\u0008\u000a-\u001f\u007f]/;

function checkHeaders(headers: Record<string, string[]>, id: string): Record<string, string[]> {
  for (const [name, values] of Object.entries(headers)) {
    if (!HEADER_NAME_RE.test(name)) throw errors.invalid(`check ${id}: header name ${JSON.stringify(name.slice(0, 80))} is not a valid HTTP field name`);
    if (!Array.isArray(values) || values.some((v) => typeof v !== 'string' || HEADER_VALUE_BAD.test(v)))
      throw errors.invalid(`check ${id}: header ${name} must be a list of strings without CR, LF, NUL or other control characters`);
  }
  return headers;
}
