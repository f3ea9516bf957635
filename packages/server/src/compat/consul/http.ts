import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { errors, isBeaconError, parseDuration, type Clock, type Random } from '@beacon/core';
import { parseFilter, type FilterExpr } from './filter.js';
import { MethodTable } from './methods.js';
import { parkRead, type IndexWait, type ParkDeps } from '../../http/park.js';
import type { Federation, Forwarded } from '../../federation/federation.js';

export const DEFAULT_WAIT_MS = 5 * 60_000;
export const MAX_WAIT_MS = 10 * 60_000;

export type Query = Record<string, string | string[] | undefined>;

/** A query parameter's last value (repeated parameters arrive as arrays). */
export function param(q: Query, name: string): string | undefined {
  const v = q[name];
  return Array.isArray(v) ? v[v.length - 1] : v;
}

export function params(q: Query, name: string): string[] {
  const v = q[name];
  if (v === undefined) return [];
  return Array.isArray(v) ? v : [v];
}

/** Consul's presence flags (`?recurse`, `?keys`, `?raw`, `?stale`): on when present, whatever the value. */
export function present(q: Query, name: string): boolean {
  return q[name] !== undefined;
}

/** Consul's booleans (`?passing`, `?enable`): present and empty is true; `false`/`0` are false. */
export function bool(q: Query, name: string): boolean {
  const v = param(q, name);
  if (v === undefined) return false;
  const s = v.toLowerCase();
  if (s === '' || s === 'true' || s === '1' || s === 't') return true;
  if (s === 'false' || s === '0' || s === 'f') return false;
  throw errors.invalid(`Invalid value for ?${name}: ${JSON.stringify(v)}`);
}

export function uint(q: Query, name: string, message: string): number | undefined {
  const v = param(q, name);
  if (v === undefined || v === '') return undefined;
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(Number(v))) throw errors.invalid(message);
  return Number(v);
}

export interface BlockingParams {
  /** 0 or absent: answer at once. */
  index: number;
  /** The wait with jitter already added. */
  waitMs: number;
  filter: FilterExpr | undefined;
}

/** `?index`, `?wait` (plus up to wait/16 of jitter, below the 10 % the `consul` npm client allows) and `?filter`. */
export function blockingParams(q: Query, random: Random): BlockingParams {
  const index = uint(q, 'index', 'Invalid index') ?? 0;
  let waitMs = DEFAULT_WAIT_MS;
  const wait = param(q, 'wait');
  if (wait !== undefined && wait !== '') {
    if (!/^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/.test(wait) && wait !== '0') throw errors.invalid('Invalid wait time');
    waitMs = Math.min(parseDuration(wait), MAX_WAIT_MS);
  }
  waitMs += Math.floor(random.next() * (waitMs / 16));
  const f = param(q, 'filter');
  return { index, waitMs, filter: f ? parseFilter(f) : undefined };
}

/** `?node-meta=key:value`, repeatable; all must match. */
export function nodeMetaFilter(q: Query): [string, string][] {
  return params(q, 'node-meta').map((s) => {
    const at = s.indexOf(':');
    return at < 0 ? [s, ''] : [s.slice(0, at), s.slice(at + 1)];
  });
}

export function matchesNodeMeta(meta: Record<string, string>, want: [string, string][]): boolean {
  return want.every(([k, v]) => meta[k] === v);
}

/**
 * Parks the request until `wait` resolves (the resource's index passed `index`), the wait ends, or
 * the client hangs up ({@link parkRead}). Index 0 answers at once; past the client's rate or a cap
 * of parked queries the answer is 429. A token deleted or changed while its query is parked wakes
 * it, so it answers with the new rights (filtered) or fails as Consul does ("ACL not found").
 */
export async function block(reply: FastifyReply, p: BlockingParams, wait: IndexWait, d: ParkDeps): Promise<void> {
  if (!p.index) return;
  await parkRead(reply.request, reply, 'consul', p.index, p.waitMs, wait, d);
}

/** Sends JSON (indented with `?pretty`), with `X-Consul-Index` (never 0) when given. */
export function send(req: FastifyRequest, reply: FastifyReply, body: unknown, index?: number): FastifyReply {
  if (index !== undefined) reply.header('X-Consul-Index', String(Math.max(1, index)));
  const pretty = (req.query as Query | undefined)?.pretty !== undefined;
  return reply.type('application/json').send(pretty ? JSON.stringify(body, null, 4) : JSON.stringify(body));
}

/** Sends already serialized JSON (cached answers). */
export function sendRaw(reply: FastifyReply, body: Buffer | string, index: number): FastifyReply {
  reply.header('X-Consul-Index', String(Math.max(1, index)));
  return reply.type('application/json').send(body);
}

export interface ConsulScopeOptions {
  datacenter: string;
  /** Every datacenter this server knows, the local one first. */
  datacenters: () => string[];
  /** Whether reads of `dc` may be behind, and since when: Consul's "known leader" and "last contact". */
  staleSince: (dc: string) => number | undefined;
  clock: Clock;
  aclToken?: string;
  /** ACLs on (`--acl`): the default policy Consul's clients are told is deny. */
  acl?: boolean;
  /** Sees every /v1 request no route matched (404, 405), which no route's own hooks see. */
  onNotFound?: (req: FastifyRequest, reply: FastifyReply) => void;
}

/** The routes that answer `?dc=` for another datacenter (reads from its followed view, KV and queries forwarded or failed over). */
const CROSS_DC_ROUTES = new Set([
  '/v1/catalog/datacenters',
  '/v1/catalog/services',
  '/v1/catalog/service/:name',
  '/v1/health/service/:name',
  '/v1/kv/*',
  '/v1/query',
  '/v1/query/:id',
  '/v1/query/:id/execute',
  '/v1/query/:id/explain',
]);

/**
 * What every /v1 request gets, in this plugin's scope only: Consul's headers, `dc` and
 * consistency checks, the optional token, raw bodies (Consul ignores the content type), and
 * errors as plain text the way Consul writes them.
 */
export function installConsulScope(app: FastifyInstance, o: ConsulScopeOptions): void {
  const methods = new MethodTable();
  methods.install(app);
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  app.addHook('onRequest', async (req, reply) => {
    reply.header('X-Consul-Default-ACL-Policy', o.aclToken || o.acl ? 'deny' : 'allow');
    // Consul's clients read these to judge a stale answer: a Beacon server whose view may be behind
    // its store is in the place of a Consul follower cut off from its leader.
    const q = (req.query ?? {}) as Query;
    const dc = param(q, 'dc') || o.datacenter;
    const known = o.datacenters();
    if (!known.includes(dc)) throw Object.assign(new Error(`No path to datacenter ${dc} (known: ${known.join(', ')})`), { statusCode: 500 });
    if (dc !== o.datacenter && !CROSS_DC_ROUTES.has(req.routeOptions.url ?? '')) {
      throw errors.invalid(`?dc=${dc}: Beacon answers another datacenter on /v1/catalog/service(s), /v1/health/service, /v1/kv and /v1/query only`);
    }
    const staleSince = o.staleSince(dc);
    reply.header('X-Consul-KnownLeader', String(staleSince === undefined));
    reply.header('X-Consul-LastContact', String(staleSince === undefined ? 0 : Math.max(0, o.clock.now() - staleSince)));
    const stale = present(q, 'stale');
    const consistent = present(q, 'consistent');
    reply.header('X-Consul-Effective-Consistency', stale ? 'stale' : consistent ? 'consistent' : 'leader');
    if (stale && consistent) throw errors.invalid('Cannot specify ?stale with ?consistent, conflicting semantics.');
    if (o.aclToken) {
      const auth = req.headers.authorization;
      const token = (req.headers['x-consul-token'] as string | undefined) ?? (auth?.startsWith('Bearer ') ? auth.slice(7) : undefined) ?? param(q, 'token');
      if (token !== o.aclToken) throw errors.forbidden('Permission denied');
    }
  });

  app.setErrorHandler((err: FastifyError, req, reply) => {
    let status: number;
    let message: string;
    if (isBeaconError(err)) {
      status = err.httpStatus;
      message = err.message;
    } else if (err.validation) {
      status = 400;
      message = err.message;
    } else if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      status = 413;
      message = 'Request body too large';
    } else if (err.statusCode && err.statusCode >= 400) {
      status = err.statusCode;
      message = err.message;
      if (status >= 500 && !message.startsWith('No path to datacenter')) req.log.error({ err }, 'consul request failed');
    } else {
      req.log.error({ err }, 'consul request failed');
      status = 500;
      message = 'internal error';
    }
    return reply.status(status).type('text/plain; charset=utf-8').send(message);
  });

  app.setNotFoundHandler((req, reply) => {
    o.onNotFound?.(req, reply);
    const allow = methods.allowed(req.url.split('?')[0]!);
    if (allow) {
      reply.header('Allow', allow.join(','));
      if (req.method === 'OPTIONS') return reply.status(200).send();
      return reply.status(405).type('text/plain; charset=utf-8').send(`method ${req.method} not allowed`);
    }
    reply.status(404).type('text/plain; charset=utf-8').send(`Not found: ${req.method} ${req.url.split('?')[0]} is not supported by Beacon's Consul API`);
  });
}

/** The JSON body of a write, whatever content type it came with; absent or empty is undefined. */
export function jsonBody(req: FastifyRequest): unknown {
  const b = req.body;
  if (b === undefined || b === null) return undefined;
  if (!Buffer.isBuffer(b)) return typeof b === 'object' && Object.keys(b as object).length === 0 ? undefined : b;
  const text = b.toString('utf8').trim();
  if (text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    throw errors.invalid('Request decode failed: body is not valid JSON');
  }
}

/** The raw body bytes of a write (KV values, event payloads). */
export function rawBody(req: FastifyRequest): Buffer {
  const b = req.body;
  return Buffer.isBuffer(b) ? b : Buffer.alloc(0);
}

/**
 * How a forwarded request meets the caller's token. The other DC answers it with the federation
 * token's rights, not the caller's (tokens live in each DC's own store), so the caller's rights are
 * checked here: before it goes (what the request needs), and on what comes back (a 200 JSON
 * answer reduced to what the caller may read).
 */
export interface ForwardAcl {
  /** Throws `forbidden` when the caller may not ask this of another DC. */
  before?(req: FastifyRequest, dc: string): void | Promise<void>;
  /** The remote's decoded 200 answer as the caller may see it. */
  answer?(req: FastifyRequest, reply: FastifyReply, body: unknown): unknown;
}

/**
 * A preHandler for routes whose data lives in one DC's store (KV, prepared queries): with another
 * DC's `?dc=` the request is forwarded to that DC (with the federation token) and its answer
 * passed back as it came, once `acl` let it go and reduced it to what the caller may read.
 */
export function forwardToDatacenter(federation: Pick<Federation, 'localName' | 'forward'>, acl: ForwardAcl = {}) {
  return async (req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> => {
    const dc = param((req.query ?? {}) as Query, 'dc');
    if (!dc || dc === federation.localName) return undefined;
    await acl.before?.(req, dc);
    const type = req.headers['content-type'];
    const fwd = await federation.forward(dc, req.method, req.url, rawBody(req), type ? { 'content-type': type } : {});
    for (const [k, v] of Object.entries(fwd.headers)) reply.header(k, v);
    if (!acl.answer || req.authz.management || fwd.status !== 200 || !fwd.headers['content-type']?.startsWith('application/json')) return reply.status(fwd.status).send(fwd.body);
    return reply.status(200).send(JSON.stringify(acl.answer(req, reply, forwardedJson(dc, fwd))));
  };
}

/** A forwarded answer's JSON body; another DC that sends something else is as good as unreachable. */
export function forwardedJson(dc: string, fwd: Pick<Forwarded, 'body'>): unknown {
  try {
    return JSON.parse(fwd.body.toString('utf8'));
  } catch {
    throw errors.unavailable(`datacenter ${dc} sent an answer that is not JSON`);
  }
}
