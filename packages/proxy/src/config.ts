import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { isNode, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import { BALANCER_NAMES, type BalancerName } from '@beacon/client';
import { assertServiceName, errors, parseFailoverFlags } from '@beacon/core';

/*
 * The proxy's configuration: one schema (TypeBox) that both validates a YAML/JSON file and is the
 * type the rest of the package reads. Durations are milliseconds (keys end in `Ms`).
 */

const Name = Type.String({ pattern: '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$', description: 'a service name (a DNS label)' });
const Count = Type.Integer({ minimum: 1, maximum: 1_000_000 });
const Ms = Type.Number({ minimum: 0, maximum: 86_400_000 });
const Strings = Type.Record(Type.String({ minLength: 1, maxLength: 256 }), Type.String({ maxLength: 1024 }));

/** A datacenter name (a DNS label, as in `web.service.<dc>.consul`). */
const Dc = Type.String({ pattern: '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$', description: 'a datacenter name (a DNS label)' });

/** Consul's prepared-query failover in the proxy's words: the nearest N other DCs by RTT, then these, in order. */
const Failover = Type.Object(
  {
    nearest: Type.Optional(Type.Integer({ minimum: 1, maximum: 64 })),
    datacenters: Type.Optional(Type.Array(Dc, { minItems: 1, maxItems: 64 })),
  },
  { additionalProperties: false },
);

const Balancer = Type.Union(BALANCER_NAMES.map((n) => Type.Literal(n)));

export const PolicySchema = Type.Object(
  {
    balancer: Type.Optional(Balancer),
    zoneAware: Type.Optional(Type.Union([Type.Boolean(), Type.Object({ minHealthyShare: Type.Number({ minimum: 0, maximum: 1 }) }, { additionalProperties: false })])),
    hashOn: Type.Optional(Type.Union([Type.Literal('client-ip'), Type.Object({ header: Type.String({ minLength: 1, maxLength: 256 }) }, { additionalProperties: false })])),
    port: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    retries: Type.Optional(
      Type.Union([
        Type.Literal(false),
        Type.Object(
          {
            max: Type.Optional(Type.Integer({ minimum: 0, maximum: 10 })),
            baseMs: Type.Optional(Ms),
            maxMs: Type.Optional(Ms),
            budgetRatio: Type.Optional(Type.Number({ minimum: 0, maximum: 10 })),
            budgetMinPerSecond: Type.Optional(Type.Number({ minimum: 0, maximum: 1_000_000 })),
            statuses: Type.Optional(Type.Array(Type.Integer({ minimum: 500, maximum: 599 }), { maxItems: 100 })),
          },
          { additionalProperties: false },
        ),
      ]),
    ),
    timeoutMs: Type.Optional(Ms),
    tryTimeoutMs: Type.Optional(Ms),
    outlier: Type.Optional(
      Type.Union([
        Type.Literal(false),
        Type.Object(
          {
            consecutive5xx: Type.Optional(Count),
            consecutiveConnectFailures: Type.Optional(Count),
            baseEjectionMs: Type.Optional(Ms),
            maxEjectionMs: Type.Optional(Ms),
            maxEjectedShare: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
          },
          { additionalProperties: false },
        ),
      ]),
    ),
    breaker: Type.Optional(
      Type.Union([Type.Literal(false), Type.Object({ halfOpenAfterMs: Type.Optional(Ms), maxHalfOpenAfterMs: Type.Optional(Ms) }, { additionalProperties: false })]),
    ),
    maxConcurrent: Type.Optional(Count),
    maxQueue: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000 })),
    maxPerInstance: Type.Optional(Count),
    slowStartMs: Type.Optional(Ms),
  },
  { additionalProperties: false },
);

const Subset = Type.Object(
  {
    tags: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 256 }), { maxItems: 64 })),
    meta: Type.Optional(Strings),
    zone: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
  },
  { additionalProperties: false },
);

const SplitEntry = Type.Object(
  {
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    weight: Type.Number({ minimum: 0, maximum: 1_000_000 }),
    tags: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 256 }), { maxItems: 64 })),
    meta: Type.Optional(Strings),
  },
  { additionalProperties: false },
);

export const RouteSchema = Type.Object(
  {
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    match: Type.Optional(
      Type.Object(
        {
          host: Type.Optional(Type.Union([Type.String({ minLength: 1, maxLength: 253 }), Type.Array(Type.String({ minLength: 1, maxLength: 253 }), { minItems: 1, maxItems: 64 })])),
          pathPrefix: Type.Optional(Type.String({ pattern: '^/', maxLength: 1024 })),
          headers: Type.Optional(Strings),
        },
        { additionalProperties: false },
      ),
    ),
    stripPrefix: Type.Optional(Type.Boolean()),
    service: Name,
    dc: Type.Optional(Dc),
    failover: Type.Optional(Failover),
    subset: Type.Optional(Subset),
    split: Type.Optional(Type.Array(SplitEntry, { minItems: 1, maxItems: 16 })),
    policy: Type.Optional(PolicySchema),
  },
  { additionalProperties: false },
);

const Protocol = Type.Union([Type.Literal('http'), Type.Literal('tcp')]);

export const ListenerSchema = Type.Object(
  {
    listen: Type.String({ minLength: 1, maxLength: 300 }),
    protocol: Type.Optional(Protocol),
    service: Type.Optional(Name),
    dc: Type.Optional(Dc),
    failover: Type.Optional(Failover),
    policy: Type.Optional(PolicySchema),
    routes: Type.Optional(Type.Array(RouteSchema, { minItems: 1, maxItems: 1000 })),
  },
  { additionalProperties: false },
);

export const ACCESS_LOG_LEVELS = ['off', 'info', 'debug'] as const;

export const ProxyConfigSchema = Type.Object(
  {
    servers: Type.Optional(Type.Array(Type.String({ pattern: '^https?://', maxLength: 300 }), { minItems: 1, maxItems: 16 })),
    zone: Type.Optional(Type.String({ maxLength: 256 })),
    admin: Type.Optional(Type.String({ minLength: 1, maxLength: 300 })),
    accessLog: Type.Optional(Type.Union(ACCESS_LOG_LEVELS.map((l) => Type.Literal(l)))),
    drainTimeoutMs: Type.Optional(Ms),
    defaults: Type.Optional(PolicySchema),
    listeners: Type.Array(ListenerSchema, { minItems: 1, maxItems: 256 }),
  },
  { additionalProperties: false },
);

export type Policy = Static<typeof PolicySchema>;
export type RouteConfig = Static<typeof RouteSchema>;
export type ListenerConfig = Static<typeof ListenerSchema>;
export type ProxyConfig = Static<typeof ProxyConfigSchema>;
export type Protocol = Static<typeof Protocol>;
export type FailoverConfig = Static<typeof Failover>;
export type AccessLogLevel = (typeof ACCESS_LOG_LEVELS)[number];
export type { BalancerName };

/** The largest configuration file read (a route table, not a data set). */
const MAX_CONFIG_BYTES = 1 << 20;

/**
 * Parses and validates a configuration (YAML, or JSON, which is YAML). Every error names the
 * file, the line and the key: `proxy.yaml:7: listeners/0/protocol: must be 'http' or 'tcp'`.
 *
 * @example
 * const config = parseConfig(readFileSync('proxy.yaml', 'utf8'), 'proxy.yaml');
 */
export function parseConfig(text: string, file = 'config'): ProxyConfig {
  if (Buffer.byteLength(text) > MAX_CONFIG_BYTES) throw errors.invalid(`${file}: larger than ${MAX_CONFIG_BYTES} bytes`);
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const syntax = doc.errors[0];
  if (syntax) throw errors.invalid(`${file}:${lines.linePos(syntax.pos[0]).line}: ${syntax.message.split('\n')[0]}`);
  const data: unknown = doc.toJS({ maxAliasCount: 100 });
  const line = (path: (string | number)[]) => lineOf(doc, lines, path);
  const first = firstError(ProxyConfigSchema, data);
  if (first) throw errors.invalid(`${file}:${line(first.path)}: ${first.path.join('/') || '(top)'}: ${first.message}`);
  const config = data as ProxyConfig;
  checkMeaning(config, (path, message) => {
    throw errors.invalid(`${file}:${line(path)}: ${path.join('/')}: ${message}`);
  });
  return config;
}

/**
 * The listener a `--listen ADDR=SERVICE` (HTTP) or `--listen ADDR=tcp:SERVICE` flag stands for;
 * `SERVICE@DC` routes to another datacenter's instances.
 *
 * @example
 * listenFlag('127.0.0.1:15002=tcp:postgres'); // { listen: '127.0.0.1:15002', protocol: 'tcp', service: 'postgres' }
 * listenFlag('127.0.0.1:15001=payments@eu-west'); // { listen: '127.0.0.1:15001', protocol: 'http', service: 'payments', dc: 'eu-west' }
 */
export function listenFlag(flag: string): ListenerConfig {
  const eq = flag.lastIndexOf('=');
  if (eq <= 0) throw errors.invalid(`--listen ${JSON.stringify(flag)}: expected ADDRESS:PORT=SERVICE or ADDRESS:PORT=tcp:SERVICE`);
  const listen = flag.slice(0, eq);
  let target = flag.slice(eq + 1);
  let protocol: Protocol = 'http';
  const colon = target.indexOf(':');
  if (colon >= 0) {
    const p = target.slice(0, colon);
    if (p !== 'http' && p !== 'tcp') throw errors.invalid(`--listen ${JSON.stringify(flag)}: protocol ${JSON.stringify(p)} is not http or tcp`);
    protocol = p;
    target = target.slice(colon + 1);
  }
  // `payments@eu-west`: another datacenter's instances, as `payments.service.eu-west.consul` names them.
  const at = target.indexOf('@');
  const dc = at >= 0 ? target.slice(at + 1) : undefined;
  if (at >= 0) target = target.slice(0, at);
  assertServiceName(target);
  if (dc !== undefined && !Value.Check(Dc, dc)) throw errors.invalid(`--listen ${JSON.stringify(flag)}: ${JSON.stringify(dc)} is not a datacenter name (a DNS label)`);
  parseHostPort(listen);
  return { listen, protocol, service: target, ...(dc !== undefined ? { dc } : {}) };
}

/**
 * Applies `--failover SERVICE=POLICY` flags (the server's syntax: `web=nearest:2`, `web=eu-west,ap-south`)
 * to every listener and route of SERVICE that names neither `dc` nor `failover`: the file or an
 * `@DC` says more than a flag for all of them. A flag that reaches nothing is an error, not a no-op.
 *
 * @example
 * applyFailoverFlags(config, ['payments=nearest:1']);
 */
export function applyFailoverFlags(config: ProxyConfig, flags: readonly string[]): void {
  for (const [service, policy] of Object.entries(parseFailoverFlags(flags))) {
    const failover: FailoverConfig = { ...(policy.nearest > 0 ? { nearest: policy.nearest } : {}), ...(policy.datacenters.length ? { datacenters: policy.datacenters } : {}) };
    let reached = 0;
    for (const target of config.listeners.flatMap((l) => [l, ...(l.routes ?? [])])) {
      if (target.service !== service || target.dc !== undefined || target.failover !== undefined) continue;
      target.failover = failover;
      reached++;
    }
    if (reached === 0) throw errors.invalid(`--failover ${service}=…: no listener or route sends to ${service} without its own dc or failover`);
  }
}

/**
 * `host:port` or `[v6]:port` (port 0 picks a free one).
 *
 * @example
 * parseHostPort('[::1]:15001'); // { host: '::1', port: 15001 }
 */
export function parseHostPort(s: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(s);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw errors.invalid(`${JSON.stringify(s)} is not HOST:PORT (e.g. 127.0.0.1:15001 or [::1]:15001)`);
  return { host: (m[1] ?? m[2])!, port };
}

/** Rules a schema cannot say: each listener routes somewhere, TCP has exactly one service, addresses parse. */
function checkMeaning(config: ProxyConfig, fail: (path: (string | number)[], message: string) => never): void {
  const seen = new Map<string, number>();
  config.listeners.forEach((l, i) => {
    try {
      parseHostPort(l.listen);
    } catch (err) {
      fail(['listeners', i, 'listen'], (err as Error).message);
    }
    const prev = seen.get(l.listen);
    if (prev !== undefined && !l.listen.endsWith(':0')) fail(['listeners', i, 'listen'], `the same address as listeners/${prev}`);
    seen.set(l.listen, i);
    if ((l.service === undefined) === (l.routes === undefined)) fail(['listeners', i], 'give either service or routes');
    if ((l.protocol ?? 'http') === 'tcp' && l.routes) fail(['listeners', i, 'routes'], 'a tcp listener forwards to one service (give service, not routes)');
    if (l.routes && (l.dc !== undefined || l.failover !== undefined)) fail(['listeners', i, l.dc !== undefined ? 'dc' : 'failover'], 'goes with service; give each route its own');
    checkScope(l, ['listeners', i], fail);
    l.routes?.forEach((r, j) => {
      if (r.stripPrefix && !r.match?.pathPrefix) fail(['listeners', i, 'routes', j, 'stripPrefix'], 'needs match.pathPrefix');
      if (r.split && r.subset) fail(['listeners', i, 'routes', j, 'split'], 'give split or subset, not both');
      if (r.split && !r.split.some((s) => s.weight > 0)) fail(['listeners', i, 'routes', j, 'split'], 'at least one weight must be above 0');
      checkScope(r, ['listeners', i, 'routes', j], fail);
    });
  });
  if (config.admin !== undefined) {
    try {
      parseHostPort(config.admin);
    } catch (err) {
      fail(['admin'], (err as Error).message);
    }
  }
}

/** `dc` and `failover` do not go together (failover starts from the server's own DC), and failover says where to look. */
function checkScope(s: { dc?: string; failover?: FailoverConfig }, at: (string | number)[], fail: (path: (string | number)[], message: string) => never): void {
  if (s.dc !== undefined && s.failover !== undefined) fail([...at, 'failover'], "give dc or failover, not both: failover starts from the server's own datacenter");
  if (s.failover && s.failover.nearest === undefined && s.failover.datacenters === undefined) fail([...at, 'failover'], 'give nearest: N and/or datacenters: [...]');
}

/** The first schema error, reported at the deepest path that has one (the most precise message). */
function firstError(schema: TSchema, data: unknown, prefix: (string | number)[] = []): { path: (string | number)[]; message: string } | undefined {
  let best: { path: (string | number)[]; message: string } | undefined;
  for (const e of Value.Errors(schema, data)) {
    const path = [
      ...prefix,
      ...e.path
        .split('/')
        .slice(1)
        .map((p) => (/^\d+$/.test(p) ? Number(p) : p.replace(/~1/g, '/').replace(/~0/g, '~'))),
    ];
    // `false | { … }` with an object given: what is wrong inside the object is the useful part.
    const objectVariant = (e.schema.anyOf as TSchema[] | undefined)?.find((v) => v.type === 'object');
    const inner = objectVariant && typeof e.value === 'object' && e.value !== null ? firstError(objectVariant, e.value, path) : undefined;
    const found = inner ?? { path, message: describe(e.schema, e.message, e.value) };
    if (!best || found.path.length > best.path.length) best = found;
  }
  return best;
}

function describe(schema: TSchema, message: string, value: unknown): string {
  const lits = (schema.anyOf as TSchema[] | undefined)?.map((s) => s.const).filter((c) => typeof c === 'string');
  if (lits && lits.length) return `must be one of ${lits.map((l) => `'${l}'`).join(', ')}, got ${JSON.stringify(value)}`;
  if (message.startsWith('Unexpected property')) return 'unknown key';
  if (typeof schema.description === 'string') return `${message.toLowerCase()} (${schema.description})`;
  return message.charAt(0).toLowerCase() + message.slice(1);
}

/** The line of the deepest node that exists on `path` (a missing key is reported at its parent). */
function lineOf(doc: Document, lines: LineCounter, path: (string | number)[]): number {
  for (let n = path.length; n >= 0; n--) {
    const node = doc.getIn(path.slice(0, n), true) as unknown;
    if (isNode(node) && (node as Node).range) return lines.linePos((node as Node).range![0]).line;
  }
  return 1;
}
