import { CHECK_STATUSES, errors, LIMITS, type CheckStatus } from '@beacon/core';
import type { CheckInput, RegistrationInput } from '../../registry/normalize.js';
import { bodyDuration } from './duration.js';
import { mapCheckId, serviceNameForWrite } from './names.js';

/**
 * Reads Consul registration bodies. Consul accepts keys in CamelCase or snake_case
 * (`DeregisterCriticalServiceAfter`, `deregister_critical_service_after`), so struct keys are
 * compared lower-cased without underscores; user maps (Meta, Header) keep their keys as given.
 */
export class Fields {
  private readonly m = new Map<string, unknown>();

  constructor(
    obj: unknown,
    readonly what: string,
  ) {
    if (obj === undefined || obj === null) return;
    if (typeof obj !== 'object' || Array.isArray(obj)) throw errors.invalid(`${what} must be a JSON object`);
    for (const [k, v] of Object.entries(obj)) this.m.set(k.replace(/_/g, '').toLowerCase(), v);
  }

  has(name: string): boolean {
    const v = this.m.get(name);
    return v !== undefined && v !== null;
  }

  raw(name: string): unknown {
    return this.m.get(name);
  }

  str(name: string): string | undefined {
    const v = this.m.get(name);
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string') throw errors.invalid(`${this.what}.${name}: expected a string`);
    return v;
  }

  num(name: string): number | undefined {
    const v = this.m.get(name);
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw errors.invalid(`${this.what}.${name}: expected a number`);
    return v;
  }

  /** Go's uint64 fields: JSON numbers that are whole and not negative, as Consul's decoder demands. */
  uint(name: string): number | undefined {
    const v = this.num(name);
    if (v !== undefined && (!Number.isSafeInteger(v) || v < 0)) throw errors.invalid(`Failed to parse body: ${this.what}.${name}: expected an unsigned integer, got ${v}`);
    return v;
  }

  bool(name: string): boolean | undefined {
    const v = this.m.get(name);
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'boolean') throw errors.invalid(`${this.what}.${name}: expected true or false`);
    return v;
  }

  strings(name: string): string[] | undefined {
    const v = this.m.get(name);
    if (v === undefined || v === null) return undefined;
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw errors.invalid(`${this.what}.${name}: expected a list of strings`);
    return v as string[];
  }

  stringMap(name: string): Record<string, string> | undefined {
    const v = this.m.get(name);
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'object' || Array.isArray(v)) throw errors.invalid(`${this.what}.${name}: expected an object of strings`);
    const out: Record<string, string> = {};
    for (const [k, x] of Object.entries(v)) {
      if (typeof x !== 'string') throw errors.invalid(`${this.what}.${name}.${k}: expected a string`);
      out[k] = x;
    }
    return out;
  }

  sub(name: string): Fields | undefined {
    const v = this.m.get(name);
    return v === undefined || v === null ? undefined : new Fields(v, `${this.what}.${name}`);
  }

  list(name: string): Fields[] | undefined {
    const v = this.m.get(name);
    if (v === undefined || v === null) return undefined;
    if (!Array.isArray(v)) throw errors.invalid(`${this.what}.${name}: expected a list`);
    return v.map((x, i) => new Fields(x, `${this.what}.${name}[${i}]`));
  }

  duration(name: string): number | undefined {
    return bodyDuration(this.m.get(name), `${this.what}.${name}`);
  }
}

export interface ParsedCheck {
  input: CheckInput;
  /** The check's Status as the body gave it (Consul's initial status, or a catalog update). */
  status?: CheckStatus;
  output?: string;
  serviceId?: string;
}

export const CATALOG_CHECK_TTL_MS = 24 * 3_600_000;
const MIN_DEREGISTER_MS = 60_000;

function status(f: Fields): CheckStatus | undefined {
  const s = f.str('status');
  if (s === undefined || s === '') return undefined;
  if (!CHECK_STATUSES.includes(s as CheckStatus)) throw errors.invalid(`${f.what}.Status: must be passing, warning or critical`);
  return s as CheckStatus;
}

function count(f: Fields, name: string): number | undefined {
  const n = f.num(name);
  return n === undefined || n <= 0 ? undefined : n;
}

/**
 * A script check's argv, on every path that can carry one (agent service and check register, a
 * catalog check's Definition): Consul reads `Args`, `ScriptArgs` and `script_args` alike, and
 * emits `ScriptArgs`. Whether a script check may run is then the registry's target policy
 * (`--enable-script-checks`), the same for all of them.
 */
export function scriptArgs(f: Fields): string[] | undefined {
  const args = f.strings('args') ?? f.strings('scriptargs');
  return args?.length ? args : undefined;
}

/**
 * A check of an agent registration (Consul's CheckType). `defaults.name` is Consul's default
 * name for a check embedded in a service (`Service '<name>' check`).
 */
export function parseAgentCheck(f: Fields, defaults: { name?: string; idFromName?: boolean }): ParsedCheck {
  const name = f.str('name') || defaults.name;
  const rawId = f.str('checkid') || f.str('id') || (defaults.idFromName ? name : undefined);
  const input: CheckInput = { kind: 'ttl' };
  if (rawId) input.id = mapCheckId(rawId);
  if (name) input.name = name.slice(0, 256);
  const notes = f.str('notes');
  if (notes) input.notes = notes;
  const interval = f.duration('interval');
  const timeout = f.duration('timeout');
  const active = (kind: string) => {
    if (!interval) throw errors.invalid(`${f.what}: Interval must be > 0 for ${kind} checks`);
    input.intervalMs = interval;
    if (timeout) input.timeoutMs = timeout;
  };
  if (f.has('h2ping') || f.has('udp') || f.has('aliasnode') || f.has('aliasservice') || f.has('dockercontainerid') || f.has('osservice'))
    throw errors.invalid(`${f.what}: H2PING, UDP, alias, Docker and OS service checks are not supported by Beacon; use TTL, HTTP, TCP, GRPC or Args`);
  if (f.str('script')) throw errors.invalid(`${f.what}: Script is not supported (it would run through a shell); give the command as Args`);
  const ttl = f.duration('ttl');
  if (ttl) {
    input.kind = 'ttl';
    input.ttlMs = ttl;
  } else if (f.str('http')) {
    input.kind = 'http';
    input.url = f.str('http')!;
    const method = f.str('method');
    if (method) input.method = method;
    const header = f.raw('header');
    if (header !== undefined && header !== null) {
      if (typeof header !== 'object' || Array.isArray(header)) throw errors.invalid(`${f.what}.Header: expected an object of string lists`);
      const h: Record<string, string[]> = {};
      for (const [k, v] of Object.entries(header)) {
        if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw errors.invalid(`${f.what}.Header.${k}: expected a list of strings`);
        h[k] = v as string[];
      }
      input.headers = h;
    }
    const body = f.str('body');
    if (body) input.body = body;
    const skip = f.bool('tlsskipverify');
    if (skip !== undefined) input.tlsSkipVerify = skip;
    active('HTTP');
  } else if (f.str('tcp')) {
    input.kind = 'tcp';
    input.target = f.str('tcp')!;
    active('TCP');
  } else if (f.str('grpc')) {
    input.kind = 'grpc';
    const g = f.str('grpc')!;
    const slash = g.indexOf('/');
    input.target = slash < 0 ? g : g.slice(0, slash);
    if (slash >= 0 && g.slice(slash + 1)) input.grpcService = g.slice(slash + 1);
    const tls = f.bool('grpcusetls');
    if (tls !== undefined) input.grpcUseTls = tls;
    active('GRPC');
  } else if (scriptArgs(f)) {
    input.kind = 'script';
    input.args = scriptArgs(f)!;
    active('script');
  } else {
    throw errors.invalid(`${f.what}: a check needs one of TTL, HTTP, TCP, GRPC or Args (with Interval)`);
  }
  const dereg = f.duration('deregistercriticalserviceafter');
  if (dereg) input.deregisterCriticalAfterMs = Math.max(dereg, MIN_DEREGISTER_MS);
  const sbp = count(f, 'successbeforepassing');
  if (sbp) input.successesBeforePassing = sbp;
  const fbw = count(f, 'failuresbeforewarning');
  if (fbw) input.failuresBeforeWarning = fbw;
  const fbc = count(f, 'failuresbeforecritical');
  if (fbc) input.failuresBeforeCritical = fbc;
  const st = status(f);
  const out: ParsedCheck = { input };
  if (st) {
    out.status = st;
    input.status = st;
  }
  const serviceId = f.str('serviceid');
  if (serviceId) out.serviceId = serviceId;
  return out;
}

/**
 * A check of /v1/catalog/register (Consul's HealthCheck). With a Definition (HTTP, TCP, GRPC or script) Beacon
 * runs it; without one it is a status the registrant sets, kept as a TTL check of 24 h that each
 * registration (or /v1/agent/check/update) refreshes.
 */
export function parseCatalogCheck(f: Fields): ParsedCheck {
  const def = f.sub('definition');
  const name = f.str('name') || f.str('checkid') || 'check';
  const rawId = f.str('checkid') || name;
  let parsed: ParsedCheck;
  if (def && (def.str('http') || def.str('tcp') || def.str('grpc') || scriptArgs(def))) {
    const merged = new Fields(
      {
        ...Object.fromEntries(['http', 'tcp', 'grpc', 'header', 'method', 'body', 'tlsskipverify', 'grpcusetls'].map((k) => [k, def.raw(k)])),
        args: scriptArgs(def),
        interval: def.raw('interval') ?? def.raw('intervalduration'),
        timeout: def.raw('timeout') ?? def.raw('timeoutduration'),
        deregistercriticalserviceafter: def.raw('deregistercriticalserviceafter') ?? def.raw('deregistercriticalserviceafterduration'),
        name,
        checkid: rawId,
        notes: f.raw('notes'),
        status: f.raw('status'),
      },
      f.what,
    );
    parsed = parseAgentCheck(merged, {});
  } else {
    const input: CheckInput = { kind: 'ttl', id: mapCheckId(rawId), name: name.slice(0, 256), ttlMs: CATALOG_CHECK_TTL_MS };
    const notes = f.str('notes');
    if (notes) input.notes = notes;
    parsed = { input };
    const st = status(f) ?? 'critical';
    parsed.status = st;
    input.status = st;
  }
  const output = f.str('output');
  if (output !== undefined) parsed.output = output;
  const serviceId = f.str('serviceid');
  if (serviceId) parsed.serviceId = serviceId;
  return parsed;
}

export interface ParsedService {
  input: RegistrationInput;
  /** Checks with the status the body asked for, by check id. */
  statuses: Map<string, { status: CheckStatus; output?: string }>;
}

/** An agent service registration (`/v1/agent/service/register`). */
export function parseAgentService(body: unknown, ctx: { node: string; defaultAddress: string }): ParsedService {
  const f = new Fields(body, 'service');
  if (!f.has('name')) throw errors.invalid('Missing service name');
  const rawName = f.str('name')!;
  const service = serviceNameForWrite(rawName);
  if (f.str('kind')) throw errors.invalid(`service Kind ${JSON.stringify(f.str('kind'))} (Connect proxies and gateways) is not supported by Beacon`);
  const connect = f.sub('connect');
  if (connect?.has('sidecarservice') || connect?.has('proxy')) throw errors.invalid('Connect sidecars and proxies are not supported by Beacon');
  const input = baseService(f, { service, node: ctx.node, defaultAddress: ctx.defaultAddress });
  const statuses = new Map<string, { status: CheckStatus; output?: string }>();
  const checks: CheckInput[] = [];
  const list = f.list('checks') ?? (f.has('check') ? [f.sub('check')!] : []);
  if (list.length > LIMITS.checks) throw errors.invalid(`at most ${LIMITS.checks} checks per service`);
  list.forEach((cf) => {
    const c = parseAgentCheck(cf, { name: `Service '${rawName}' check` });
    checks.push(c.input);
    if (c.status && c.input.id) statuses.set(c.input.id, { status: c.status });
  });
  input.checks = checks;
  return { input, statuses };
}

/** The service part of a catalog registration (`Service` of `/v1/catalog/register`). */
export function parseCatalogService(f: Fields, ctx: { node: string; nodeAddress: string }): RegistrationInput {
  const name = f.str('service');
  if (!name) throw errors.invalid('Missing service name');
  const service = serviceNameForWrite(name);
  const idField = new Fields({ ...Object.fromEntries(['id', 'tags', 'address', 'port', 'meta', 'weights'].map((k) => [k, f.raw(k)])), name }, f.what);
  return baseService(idField, { service, node: ctx.node, defaultAddress: ctx.nodeAddress });
}

function baseService(f: Fields, ctx: { service: string; node: string; defaultAddress: string }): RegistrationInput {
  const id = f.str('id') || f.str('name')!;
  const port = f.num('port') ?? 0;
  const input: RegistrationInput = {
    id,
    service: ctx.service,
    address: f.str('address') || ctx.defaultAddress,
    port,
    tags: f.strings('tags') ?? [],
    meta: f.stringMap('meta') ?? {},
    node: ctx.node,
    source: 'consul',
  };
  const weights = f.sub('weights');
  const passing = weights?.num('passing');
  if (passing !== undefined) {
    if (!Number.isInteger(passing) || passing < 1 || passing > 65535) throw errors.invalid('Passing must be greater than 0');
    input.weight = passing;
  }
  return input;
}
