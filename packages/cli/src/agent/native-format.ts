import { CHECK_KINDS, errors, type CheckKind } from '@beacon/core';
import type { CheckInput, RegistrationInput } from '@beacon/server';
import { at, bool, headerMap, int, isObj, millis, str, strList, strMap, type Obj } from './fields.js';

/**
 * Beacon's own definition format: the body of `PUT /api/v1/instances` without `source` and
 * `ttlMs` (the agent sets both). Durations may be written as milliseconds (`intervalMs: 5000`)
 * or as strings (`intervalMs: 5s`, or the short key `interval: 5s`), which reads better in YAML.
 */

const INSTANCE_KEYS = ['id', 'service', 'address', 'port', 'ports', 'tags', 'meta', 'weight', 'zone', 'node', 'checks'] as const;

/** Duration fields of a check, with the short alias each accepts. */
const CHECK_DURATIONS = [
  ['ttlMs', 'ttl'],
  ['intervalMs', 'interval'],
  ['timeoutMs', 'timeout'],
  ['deregisterCriticalAfterMs', 'deregisterCriticalAfter'],
] as const;

const CHECK_KEYS = new Set<string>([
  'id',
  'name',
  'kind',
  'role',
  'url',
  'method',
  'headers',
  'body',
  'tlsSkipVerify',
  'target',
  'grpcService',
  'grpcUseTls',
  'args',
  'successesBeforePassing',
  'failuresBeforeWarning',
  'failuresBeforeCritical',
  'notes',
  'status',
  ...CHECK_DURATIONS.flat(),
]);

/** Converts one native definition; throws `invalid_argument` naming the field. */
export function nativeDefinition(raw: unknown, path: string): RegistrationInput {
  if (!isObj(raw)) throw errors.invalid(`${path || 'definition'} must be an object with at least service, address and port`);
  for (const k of Object.keys(raw)) {
    if (k === 'source' || k === 'ttlMs') throw errors.invalid(`${at(path, k)} is set by the agent (its lease is --lease-ttl); remove it from the file`);
    if (!(INSTANCE_KEYS as readonly string[]).includes(k)) throw errors.invalid(`${at(path, k)}: unknown field; expected one of ${INSTANCE_KEYS.join(', ')}`);
  }
  if (raw.service === undefined) throw errors.invalid(`${at(path, 'service')} is required`);
  const out: RegistrationInput = {
    service: str(raw.service, at(path, 'service')),
    address: raw.address === undefined ? '' : str(raw.address, at(path, 'address')),
    port: raw.port === undefined ? 0 : int(raw.port, at(path, 'port')),
  };
  if (raw.id !== undefined) out.id = str(raw.id, at(path, 'id'));
  if (raw.ports !== undefined) {
    if (!isObj(raw.ports)) throw errors.invalid(`${at(path, 'ports')} must be a map of names to ports`);
    out.ports = Object.fromEntries(Object.entries(raw.ports).map(([k, v]) => [k, int(v, at(at(path, 'ports'), k))]));
  }
  if (raw.tags !== undefined) out.tags = strList(raw.tags, at(path, 'tags'));
  if (raw.meta !== undefined) out.meta = strMap(raw.meta, at(path, 'meta'));
  if (raw.weight !== undefined) out.weight = int(raw.weight, at(path, 'weight'));
  if (raw.zone !== undefined) out.zone = str(raw.zone, at(path, 'zone'));
  if (raw.node !== undefined) out.node = str(raw.node, at(path, 'node'));
  if (raw.checks !== undefined) {
    if (!Array.isArray(raw.checks)) throw errors.invalid(`${at(path, 'checks')} must be a list`);
    out.checks = raw.checks.map((c, k) => nativeCheck(c, at(at(path, 'checks'), k)));
  }
  return out;
}

function nativeCheck(raw: unknown, path: string): CheckInput {
  if (!isObj(raw)) throw errors.invalid(`${path} must be an object with a kind`);
  for (const k of Object.keys(raw)) if (!CHECK_KEYS.has(k)) throw errors.invalid(`${at(path, k)}: unknown check field`);
  const kind = str(raw.kind, at(path, 'kind'));
  if (!(CHECK_KINDS as readonly string[]).includes(kind)) throw errors.invalid(`${at(path, 'kind')} must be one of ${CHECK_KINDS.join(', ')}`);
  const c: CheckInput = { kind: kind as CheckKind };
  const o = raw as Obj;
  if (o.id !== undefined) c.id = str(o.id, at(path, 'id'));
  if (o.name !== undefined) c.name = str(o.name, at(path, 'name'));
  if (o.role !== undefined) {
    const role = str(o.role, at(path, 'role'));
    if (role !== 'readiness' && role !== 'liveness') throw errors.invalid(`${at(path, 'role')} must be readiness or liveness`);
    c.role = role;
  }
  if (o.url !== undefined) c.url = str(o.url, at(path, 'url'));
  if (o.method !== undefined) c.method = str(o.method, at(path, 'method'));
  if (o.headers !== undefined) c.headers = headerMap(o.headers, at(path, 'headers'));
  if (o.body !== undefined) c.body = str(o.body, at(path, 'body'));
  if (o.tlsSkipVerify !== undefined) c.tlsSkipVerify = bool(o.tlsSkipVerify, at(path, 'tlsSkipVerify'));
  if (o.target !== undefined) c.target = str(o.target, at(path, 'target'));
  if (o.grpcService !== undefined) c.grpcService = str(o.grpcService, at(path, 'grpcService'));
  if (o.grpcUseTls !== undefined) c.grpcUseTls = bool(o.grpcUseTls, at(path, 'grpcUseTls'));
  if (o.args !== undefined) c.args = strList(o.args, at(path, 'args'));
  if (o.successesBeforePassing !== undefined) c.successesBeforePassing = int(o.successesBeforePassing, at(path, 'successesBeforePassing'));
  if (o.failuresBeforeWarning !== undefined) c.failuresBeforeWarning = int(o.failuresBeforeWarning, at(path, 'failuresBeforeWarning'));
  if (o.failuresBeforeCritical !== undefined) c.failuresBeforeCritical = int(o.failuresBeforeCritical, at(path, 'failuresBeforeCritical'));
  if (o.notes !== undefined) c.notes = str(o.notes, at(path, 'notes'));
  if (o.status !== undefined) {
    const s = str(o.status, at(path, 'status'));
    if (s !== 'passing' && s !== 'warning' && s !== 'critical') throw errors.invalid(`${at(path, 'status')} must be passing, warning or critical`);
    c.status = s;
  }
  for (const [long, short] of CHECK_DURATIONS) {
    if (o[long] !== undefined && o[short] !== undefined) throw errors.invalid(`${path}: give ${long} or ${short}, not both`);
    const v = o[long] ?? o[short];
    if (v !== undefined) c[long] = millis(v, at(path, o[long] !== undefined ? long : short));
  }
  return c;
}
