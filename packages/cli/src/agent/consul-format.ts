import { errors } from '@beacon/core';
import type { CheckInput, RegistrationInput } from '@beacon/server';
import { at, bool, durationString, headerMap, int, isObj, str, strList, strMap, type Obj } from './fields.js';

/**
 * Consul's service definition files (`{"service": {…}}` or `{"services": […]}`), mapped onto
 * Beacon's model. Keys are matched the way Consul's config loader matches them: CamelCase
 * (`DeregisterCriticalServiceAfter`) and snake_case (`deregister_critical_service_after`) alike.
 *
 * Differences an operator should know (also in docs/agent.md):
 *  - no `ID`: Beacon derives `<service>-<address>-<port>` instead of Consul's `ID = Name`,
 *    because Beacon's ids are cluster-wide while Consul's are per agent;
 *  - `Name` is lower-cased (DNS names are case-insensitive; Beacon stores the canonical form);
 *  - `Weights.Passing` becomes the weight; `Weights.Warning` has no counterpart;
 *  - Connect / proxy / mesh fields and the check types Beacon does not run (Docker, Shell,
 *    H2PING, UDP, OSService, alias) are refused with a clear error rather than half-registered.
 */

export interface ConsulMapping {
  definitions: Array<{ input: RegistrationInput; path: string }>;
  /** Fields accepted but with no effect in Beacon, reported so nothing is silently dropped. */
  warnings: string[];
}

/** Whether a parsed document looks like a Consul service definition rather than Beacon's own. */
export function isConsulDocument(doc: unknown): boolean {
  if (!isObj(doc)) return false;
  const keys = Object.keys(doc).map(canon);
  return (keys.includes('service') && isObj(lookup(doc, 'service'))) || (keys.includes('services') && Array.isArray(lookup(doc, 'services')));
}

export function consulDocument(doc: Obj): ConsulMapping {
  const warnings: string[] = [];
  const out: ConsulMapping = { definitions: [], warnings };
  for (const k of Object.keys(doc)) {
    const c = canon(k);
    if (c === 'service') {
      out.definitions.push({ input: consulService(doc[k], k, warnings), path: k });
    } else if (c === 'services') {
      const list = doc[k];
      if (!Array.isArray(list)) throw errors.invalid(`${k} must be a list of services`);
      list.forEach((s, n) => out.definitions.push({ input: consulService(s, at(k, n), warnings), path: at(k, n) }));
    } else {
      throw errors.invalid(`${k}: only "service" and "services" belong in a service definition file (agent settings are flags of beacon agent)`);
    }
  }
  return out;
}

/** Lower-case without underscores: the form both spellings share. */
function canon(k: string): string {
  return k.replace(/_/g, '').toLowerCase();
}

function lookup(o: Obj, key: string): unknown {
  for (const k of Object.keys(o)) if (canon(k) === key) return o[k];
  return undefined;
}

const IGNORED_SERVICE = new Set(['enabletagoverride', 'taggedaddresses', 'token', 'namespace', 'partition', 'locality', 'datacenter']);
const REFUSED_SERVICE: Record<string, string> = {
  kind: 'service kinds (Connect proxies, gateways)',
  proxy: 'Connect proxies',
  connect: 'Connect (service mesh)',
  socketpath: 'Unix socket services',
};

function consulService(raw: unknown, path: string, warnings: string[]): RegistrationInput {
  if (!isObj(raw)) throw errors.invalid(`${path} must be an object with at least a Name`);
  let name: string | undefined;
  const input: RegistrationInput = { service: '', address: '', port: 0 };
  const checks: Array<{ raw: unknown; path: string }> = [];
  for (const [k, v] of Object.entries(raw)) {
    const p = at(path, k);
    const c = canon(k);
    switch (c) {
      case 'name':
        name = str(v, p);
        break;
      case 'id':
        input.id = str(v, p);
        break;
      case 'address':
        input.address = str(v, p);
        break;
      case 'port':
        input.port = int(v, p);
        break;
      case 'tags':
        input.tags = strList(v, p);
        break;
      case 'meta':
        input.meta = strMap(v, p);
        break;
      case 'weights': {
        if (!isObj(v)) throw errors.invalid(`${p} must be an object {Passing, Warning}`);
        const passing = lookup(v, 'passing');
        if (passing !== undefined) input.weight = int(passing, at(p, 'Passing'));
        if (lookup(v, 'warning') !== undefined) warnings.push(`${at(p, 'Warning')} has no counterpart in Beacon and is ignored`);
        break;
      }
      case 'check':
        checks.push({ raw: v, path: p });
        break;
      case 'checks':
        if (!Array.isArray(v)) throw errors.invalid(`${p} must be a list of checks`);
        v.forEach((x, n) => checks.push({ raw: x, path: at(p, n) }));
        break;
      default:
        if (REFUSED_SERVICE[c]) throw errors.invalid(`${p}: ${REFUSED_SERVICE[c]} are not supported by Beacon`);
        if (IGNORED_SERVICE.has(c)) {
          warnings.push(`${p} has no effect in Beacon and is ignored`);
          break;
        }
        throw errors.invalid(`${p}: unknown field of a Consul service definition`);
    }
  }
  if (name === undefined || name === '') throw errors.invalid(`${at(path, 'Name')} is required`);
  input.service = name.toLowerCase();
  if (input.service !== name) warnings.push(`${at(path, 'Name')} ${JSON.stringify(name)} is registered as ${JSON.stringify(input.service)} (service names are lower-case DNS labels)`);
  if (checks.length) input.checks = checks.map((c, n) => consulCheck(c.raw, c.path, name!, checks.length > 1 ? n + 1 : 0, warnings));
  return input;
}

const IGNORED_CHECK = new Set(['serviceid', 'tlsservername', 'outputmaxsize', 'type', 'definition', 'node', 'namespace', 'partition']);
const REFUSED_TYPES: Record<string, string> = {
  dockercontainerid: 'Docker',
  shell: 'Docker shell',
  h2ping: 'H2PING',
  udp: 'UDP',
  osservice: 'OS service',
  aliasservice: 'alias',
  aliasnode: 'alias',
};

function consulCheck(raw: unknown, path: string, serviceName: string, ordinal: number, warnings: string[]): CheckInput {
  if (!isObj(raw)) throw errors.invalid(`${path} must be an object`);
  const c: Partial<CheckInput> = {};
  const types: string[] = [];
  const setKind = (kind: CheckInput['kind'], key: string) => {
    types.push(key);
    c.kind = kind;
  };
  for (const [k, v] of Object.entries(raw)) {
    const p = at(path, k);
    const key = canon(k);
    switch (key) {
      case 'name':
        c.name = str(v, p);
        break;
      case 'id':
      case 'checkid':
        c.id = str(v, p);
        break;
      case 'notes':
        c.notes = str(v, p);
        break;
      case 'status': {
        const s = str(v, p);
        if (s !== 'passing' && s !== 'warning' && s !== 'critical') throw errors.invalid(`${p} must be passing, warning or critical`);
        c.status = s;
        break;
      }
      case 'http':
        setKind('http', k);
        c.url = str(v, p);
        break;
      case 'method':
        c.method = str(v, p);
        break;
      case 'header':
        c.headers = headerMap(v, p);
        break;
      case 'body':
        c.body = str(v, p);
        break;
      case 'tlsskipverify':
        c.tlsSkipVerify = bool(v, p);
        break;
      case 'tcp':
        setKind('tcp', k);
        c.target = str(v, p);
        break;
      case 'grpc':
        setKind('grpc', k);
        c.target = str(v, p);
        break;
      case 'grpcusetls':
        c.grpcUseTls = bool(v, p);
        break;
      case 'ttl':
        setKind('ttl', k);
        c.ttlMs = durationString(v, p);
        break;
      case 'args':
      case 'scriptargs':
        setKind('script', k);
        c.args = strList(v, p);
        break;
      case 'interval':
        c.intervalMs = durationString(v, p);
        break;
      case 'timeout':
        c.timeoutMs = durationString(v, p);
        break;
      case 'deregistercriticalserviceafter':
        c.deregisterCriticalAfterMs = durationString(v, p);
        break;
      // Consul's 0 means "at the first result", which is Beacon's 1.
      case 'successbeforepassing':
        c.successesBeforePassing = Math.max(1, int(v, p));
        break;
      case 'failuresbeforewarning':
        if (int(v, p) > 0) c.failuresBeforeWarning = int(v, p);
        break;
      case 'failuresbeforecritical':
        c.failuresBeforeCritical = Math.max(1, int(v, p));
        break;
      default:
        if (REFUSED_TYPES[key]) throw errors.invalid(`${p}: ${REFUSED_TYPES[key]} checks are not supported by Beacon (it runs HTTP, TCP, gRPC, TTL and script checks)`);
        if (IGNORED_CHECK.has(key)) {
          warnings.push(`${p} has no effect in Beacon and is ignored`);
          break;
        }
        throw errors.invalid(`${p}: unknown field of a Consul check`);
    }
  }
  if (types.length === 0) throw errors.invalid(`${path}: no check type; give one of HTTP, TCP, GRPC, TTL or Args`);
  if (types.length > 1) throw errors.invalid(`${path}: one check has one type, got ${types.join(' and ')}`);
  // Consul's default check name; the id is derived by Beacon the Consul way (service:<id>[:n]).
  c.name ??= ordinal ? `Service '${serviceName}' check ${ordinal}` : `Service '${serviceName}' check`;
  return c as CheckInput;
}
