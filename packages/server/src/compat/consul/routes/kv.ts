import type { FastifyInstance, FastifyRequest } from 'fastify';
import { errors } from '@beacon/core';
import { KV_LIMITS, type KvPair } from '../../../kv/record.js';
import { runKvTxn, type KvTxnOp, type KvVerb } from '../../../kv/txn.js';
import type { ConsulContext } from '../context.js';
import { block, blockingParams, forwardToDatacenter, forwardedJson, jsonBody, param, present, rawBody, send, uint, type Query } from '../http.js';
import { Fields } from '../registration.js';
import { ROUTE, kvVerbAccess, mayWriteTree, need, readable } from '../acl.js';
import { allowed } from '../../../acl/decide.js';
import type { Authorizer } from '../../../acl/types.js';
import type { KvStore } from '../../../kv/kv.js';

type Deps = Pick<ConsulContext, 'kv' | 'random' | 'metrics' | 'limits' | 'acl' | 'federation'>;

function pairJson(p: KvPair, withValue = true): Record<string, unknown> {
  const out: Record<string, unknown> = {
    LockIndex: p.lockIndex,
    Key: p.key,
    Flags: p.flags,
    Value: withValue ? p.value : null,
    CreateIndex: p.createIndex,
    ModifyIndex: p.modifyIndex,
  };
  if (p.session) out.Session = p.session;
  return out;
}

/** The key of a /v1/kv/<key> request, percent-decoded (`a%2Fb` is `a/b`), taken from the raw URL so nothing is decoded twice. */
function keyOf(req: FastifyRequest): string {
  const path = req.url.split('?')[0]!;
  const at = path.indexOf('/kv/');
  const raw = at < 0 ? '' : path.slice(at + 4);
  try {
    return decodeURIComponent(raw);
  } catch {
    throw errors.invalid('Invalid key: bad percent-encoding');
  }
}

function forbiddenTree(prefix: string) {
  return errors.forbidden(`Permission denied: token lacks key:write on every key under "${prefix}"`);
}

function opAllowed(authz: Authorizer, op: KvTxnOp, kv: Pick<KvStore, 'list'>): boolean {
  if (op.verb === 'delete-tree') return mayWriteTree(authz, op.key, kv.list(op.key).map((p) => p.key));
  return allowed(authz, 'key', op.key, kvVerbAccess(op.verb));
}

/** /v1/kv/… and /v1/txn. */
export async function kvRoutes(app: FastifyInstance, d: Deps): Promise<void> {
  const { kv } = d;

  // Another DC's keys live in its store only: ask it, once the caller's token allows here what
  // the request needs (the other DC runs it with the federation token), and show the caller
  // only the entries its token may read.
  app.addHook(
    'preHandler',
    forwardToDatacenter(d.federation, {
      before: async (req, dc) => {
        const q = req.query as Query;
        const key = keyOf(req);
        if (req.method === 'GET') return need(req, 'key', key, present(q, 'recurse') || present(q, 'keys') ? 'list' : 'read');
        if (req.method !== 'DELETE' || !present(q, 'recurse')) return need(req, 'key', key, 'write');
        if (req.authz.management) return;
        // A tree's delete needs write on every key under it: ask the other DC which keys it holds.
        const listed = await d.federation.forward(dc, 'GET', `${req.url.split('?')[0]}?keys`, undefined, {});
        const keys = listed.status === 200 ? forwardedJson(dc, listed) : [];
        if (!mayWriteTree(req.authz, key, Array.isArray(keys) ? keys.map(String) : [])) throw forbiddenTree(key);
      },
      answer: (req, reply, body) =>
        Array.isArray(body) ? readable(req, reply, 'key', body as unknown[], (x) => (typeof x === 'string' ? x : String((x as { Key?: unknown } | null)?.Key ?? ''))) : body,
    }),
  );

  const get = async (req: FastifyRequest, reply: import('fastify').FastifyReply) => {
    const q = req.query as Query;
    const key = keyOf(req);
    const recurse = present(q, 'recurse');
    const keysOnly = present(q, 'keys');
    if (!key && !recurse && !keysOnly) throw errors.invalid('Missing key name');
    const p = blockingParams(q, d.random);
    const prefix = recurse || keysOnly;
    // Listing a tree needs `list` on the prefix (Consul with enable_key_list_policy); each entry still needs `read`.
    need(req, 'key', key, prefix ? 'list' : 'read');
    await block(reply, p, (m, ms, signal) => kv.wait(key, prefix, m, ms, signal), d);
    if (keysOnly) {
      const sep = param(q, 'separator');
      const keys = readable(req, reply, 'key', kv.keys(key, sep || undefined), (k) => k);
      const index = kv.prefixIndex(key);
      if (keys.length === 0) return reply.status(404).header('X-Consul-Index', String(index)).send();
      return send(req, reply, keys, index);
    }
    if (recurse) {
      const pairs = readable(req, reply, 'key', kv.list(key), (p) => p.key);
      const index = kv.prefixIndex(key);
      if (pairs.length === 0) return reply.status(404).header('X-Consul-Index', String(index)).send();
      return send(req, reply, pairs.map((x) => pairJson(x)), index);
    }
    const pair = kv.get(key);
    const index = kv.index(key);
    if (!pair) return reply.status(404).header('X-Consul-Index', String(index)).send();
    if (present(q, 'raw')) {
      reply.header('X-Consul-Index', String(index)).type('application/octet-stream');
      return reply.send(pair.value === null ? Buffer.alloc(0) : Buffer.from(pair.value, 'base64'));
    }
    return send(req, reply, [pairJson(pair)], index);
  };
  app.get('/kv/*', ROUTE, get);
  app.get('/kv', ROUTE, get);

  app.put('/kv/*', { ...ROUTE, bodyLimit: KV_LIMITS.valueBytes + 1024 }, async (req, reply) => {
    const q = req.query as Query;
    const key = keyOf(req);
    if (!key) throw errors.invalid('Missing key name');
    need(req, 'key', key, 'write');
    const opts: Parameters<typeof kv.put>[2] = {};
    const flags = uint(q, 'flags', 'Invalid flags');
    if (flags !== undefined) opts.flags = flags;
    const cas = uint(q, 'cas', 'Invalid cas index');
    if (cas !== undefined) opts.cas = cas;
    const acquire = param(q, 'acquire');
    if (acquire !== undefined) opts.acquire = acquire;
    const release = param(q, 'release');
    if (release !== undefined) opts.release = release;
    const body = rawBody(req);
    if (body.length > KV_LIMITS.valueBytes) throw errors.tooLarge(`Request body(${body.length} bytes) too large, max size: ${KV_LIMITS.valueBytes} bytes`);
    // An empty body stores no value (Consul answers `Value: null` for it), as folder keys (`a/b/`) do.
    return send(req, reply, await kv.put(key, body.length ? body : null, opts));
  });

  const del = async (req: FastifyRequest, reply: import('fastify').FastifyReply) => {
    const q = req.query as Query;
    const key = keyOf(req);
    const recurse = present(q, 'recurse');
    if (!key && !recurse) throw errors.invalid('Missing key name');
    const cas = uint(q, 'cas', 'Invalid cas index');
    if (!recurse) need(req, 'key', key, 'write');
    else if (!mayWriteTree(req.authz, key, kv.list(key).map((p) => p.key))) throw forbiddenTree(key);
    return send(req, reply, await kv.delete(key, { recurse, ...(cas !== undefined ? { cas } : {}) }));
  };
  app.delete('/kv/*', ROUTE, del);
  app.delete('/kv', ROUTE, del);

  app.put('/txn', { ...ROUTE, bodyLimit: 1024 * 1024 }, async (req, reply) => {
    const body = jsonBody(req);
    if (!Array.isArray(body)) throw errors.invalid('Failed to parse body: expected a list of operations');
    if (body.length > KV_LIMITS.txnOps) throw errors.tooLarge(`Transaction contains too many operations (${body.length} > ${KV_LIMITS.txnOps})`);
    const ops: KvTxnOp[] = body.map((raw, i) => {
      const op = new Fields(raw, `operation ${i}`);
      const k = op.sub('kv');
      if (!k) throw errors.invalid(`operation ${i}: Beacon supports KV operations only in /v1/txn (not Node, Service or Check)`);
      const verb = k.str('verb') as KvVerb | undefined;
      if (!verb) throw errors.invalid(`operation ${i}: missing Verb`);
      const value = k.str('value');
      const out: KvTxnOp = { verb, key: k.str('key') ?? '' };
      if (value !== undefined) out.value = Buffer.from(value, 'base64');
      const flags = k.uint('flags');
      if (flags !== undefined) out.flags = flags;
      const index = k.uint('index');
      if (index !== undefined) out.index = index;
      const session = k.str('session');
      if (session) out.session = session;
      return out;
    });
    // All or nothing: every operation is judged before any runs; Consul answers a denied one as a failed transaction (409).
    const denied = ops.flatMap((op, i) => (opAllowed(req.authz, op, kv) ? [] : [{ OpIndex: i, What: 'Permission denied' }]));
    if (denied.length) return reply.status(409).type('application/json').send(JSON.stringify({ Results: null, Errors: denied }));
    const r = await runKvTxn(kv, ops);
    if (!r.ok) return reply.status(409).type('application/json').send(JSON.stringify({ Results: null, Errors: r.errors.map((e) => ({ OpIndex: e.opIndex, What: e.what })) }));
    return send(req, reply, { Results: r.results.map((p) => ({ KV: pairJson(p, p.withValue) })), Errors: null }, kv.tableIndex);
  });
}
