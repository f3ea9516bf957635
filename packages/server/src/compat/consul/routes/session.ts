import { clientOf } from '../../../http/limits/index.js';
import type { FastifyInstance } from 'fastify';
import { errors } from '@beacon/core';
import type { Session, SessionBehavior, SessionInput } from '../../../kv/sessions.js';
import type { ConsulContext } from '../context.js';
import { goDuration } from '../duration.js';
import { block, blockingParams, jsonBody, send, type Query } from '../http.js';
import { mapCheckId } from '../names.js';
import { Fields } from '../registration.js';
import { ROUTE, need, readable } from '../acl.js';

type Deps = Pick<ConsulContext, 'sessions' | 'random' | 'metrics' | 'limits' | 'acl'> & { serverNode: string };

function sessionJson(s: Session): Record<string, unknown> {
  return {
    ID: s.id,
    Name: s.name,
    Node: s.node,
    LockDelay: s.lockDelayMs * 1e6,
    Behavior: s.behavior,
    TTL: s.ttlMs ? goDuration(s.ttlMs) : '',
    NodeChecks: s.nodeChecks,
    ServiceChecks: s.serviceChecks.length ? s.serviceChecks.map((id) => ({ ID: id, Namespace: '' })) : null,
    Checks: [...s.nodeChecks, ...s.serviceChecks],
    CreateIndex: s.createIndex,
    ModifyIndex: s.modifyIndex,
  };
}

/** Consul's LockDelay: a duration string, or a number read as seconds below 1000 and as nanoseconds above. */
function lockDelay(f: Fields): number | undefined {
  const v = f.raw('lockdelay');
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v === 'number') return v < 1000 ? v * 1000 : Math.round(v / 1e6);
  return f.duration('lockdelay');
}

/** /v1/session/…: sessions for locks and leader election. */
export async function sessionRoutes(app: FastifyInstance, d: Deps): Promise<void> {
  const { sessions } = d;

  app.put('/session/create', ROUTE, async (req, reply) => {
    const f = new Fields(jsonBody(req) ?? {}, 'session');
    const input: SessionInput = {};
    const name = f.str('name');
    if (name) input.name = name;
    const node = f.str('node');
    if (node) input.node = node;
    const ld = lockDelay(f);
    if (ld !== undefined) input.lockDelayMs = ld;
    const behavior = f.str('behavior');
    if (behavior) input.behavior = behavior as SessionBehavior;
    const ttl = f.duration('ttl');
    if (ttl) input.ttlMs = ttl;
    const legacy = f.strings('checks');
    const nodeChecks = f.strings('nodechecks');
    if (legacy || nodeChecks) input.nodeChecks = [...(nodeChecks ?? []), ...(legacy ?? [])].map(mapCheckId);
    const svc = f.list('servicechecks');
    if (svc) input.serviceChecks = svc.map((c) => mapCheckId(c.str('id') ?? ''));
    // A session belongs to its node: creating one needs session write there (the server's node when none is named).
    need(req, 'session', input.node ?? d.serverNode, 'write');
    input.client = clientOf(req);
    const s = await sessions.create(input);
    return send(req, reply, { ID: s.id });
  });

  /** Destroying or renewing a session needs session write on its node; an unknown id is left to the sessions' own answer. */
  const needWrite = (req: import('fastify').FastifyRequest, id: string) => {
    const s = sessions.get(id);
    if (s) need(req, 'session', s.node, 'write');
  };

  app.put<{ Params: { id: string } }>('/session/destroy/:id', ROUTE, async (req, reply) => {
    needWrite(req, req.params.id);
    await sessions.destroy(req.params.id);
    return send(req, reply, true);
  });

  app.put<{ Params: { id: string } }>('/session/renew/:id', ROUTE, async (req, reply) => {
    needWrite(req, req.params.id);
    const s = await sessions.renew(req.params.id);
    if (!s) throw errors.notFound(`Session id '${req.params.id}' not found`);
    return send(req, reply, [sessionJson(s)], s.modifyIndex);
  });

  app.get<{ Params: { id: string } }>('/session/info/:id', ROUTE, async (req, reply) => {
    const p = blockingParams(req.query as Query, d.random);
    await block(reply, p, (m, ms, signal) => sessions.wait(m, ms, signal, req.params.id), d);
    const s = sessions.get(req.params.id);
    return send(req, reply, s ? readable(req, reply, 'session', [s], (x) => x.node).map(sessionJson) : [], sessions.mirror.indexOf(req.params.id));
  });

  app.get<{ Params: { node: string } }>('/session/node/:node', ROUTE, async (req, reply) => {
    const p = blockingParams(req.query as Query, d.random);
    await block(reply, p, (m, ms, signal) => sessions.wait(m, ms, signal), d);
    return send(req, reply, readable(req, reply, 'session', sessions.byNode(req.params.node), (s) => s.node).map(sessionJson), sessions.index);
  });

  app.get('/session/list', ROUTE, async (req, reply) => {
    const p = blockingParams(req.query as Query, d.random);
    await block(reply, p, (m, ms, signal) => sessions.wait(m, ms, signal), d);
    return send(req, reply, readable(req, reply, 'session', sessions.list(), (s) => s.node).map(sessionJson), sessions.index);
  });
}
