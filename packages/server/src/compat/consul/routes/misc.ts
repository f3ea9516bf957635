import type { FastifyInstance } from 'fastify';
import { formatHostPort } from '../../../addr.js';
import type { ConsulContext } from '../context.js';
import type { UserEvent } from '../events.js';
import { block, blockingParams, param, rawBody, send, type Query } from '../http.js';
import { OPEN, ROUTE, need, readable } from '../acl.js';

type Deps = Pick<ConsulContext, 'view' | 'events' | 'random' | 'metrics' | 'limits' | 'acl' | 'cluster'>;

function eventJson(e: UserEvent): Record<string, unknown> {
  return {
    ID: e.id,
    Name: e.name,
    Payload: e.payload,
    NodeFilter: e.nodeFilter,
    ServiceFilter: e.serviceFilter,
    TagFilter: e.tagFilter,
    Version: e.version,
    LTime: e.ltime,
  };
}

/**
 * /v1/status/… and /v1/event/…. A single server is its own leader and only peer; in clustered mode
 * the peers are the live Beacon servers and the leader is the longest-standing one (Beacon needs
 * no leader to serve or write — etcd orders writes — but clients expect one stable answer).
 */
export async function miscRoutes(app: FastifyInstance, d: Deps): Promise<void> {
  const self = () => {
    const s = d.view.consulInstance();
    return formatHostPort(s.address, s.port);
  };
  const hostPort = (httpUrl: string) => {
    const u = new URL(httpUrl);
    return `${u.hostname}:${u.port}`;
  };
  app.get('/status/leader', OPEN, async (req, reply) => {
    if (!d.cluster) return send(req, reply, self());
    const leader = d.cluster.leader();
    return send(req, reply, leader ? hostPort(leader.httpUrl) : '');
  });
  app.get('/status/peers', OPEN, async (req, reply) => send(req, reply, d.cluster ? d.cluster.members().map((m) => hostPort(m.httpUrl)) : [self()]));

  app.put<{ Params: { name: string } }>('/event/fire/:name', ROUTE, async (req, reply) => {
    const q = req.query as Query;
    need(req, 'event', req.params.name, 'write');
    const body = rawBody(req);
    const e = d.events.fire({
      name: req.params.name,
      payload: body.length ? body : null,
      ...(param(q, 'node') ? { node: param(q, 'node')! } : {}),
      ...(param(q, 'service') ? { service: param(q, 'service')! } : {}),
      ...(param(q, 'tag') ? { tag: param(q, 'tag')! } : {}),
    });
    return send(req, reply, eventJson(e));
  });

  app.get('/event/list', ROUTE, async (req, reply) => {
    const q = req.query as Query;
    const p = blockingParams(q, d.random);
    await block(reply, p, (m, ms, signal) => d.events.wait(m, ms, signal), d);
    return send(req, reply, readable(req, reply, 'event', d.events.list(param(q, 'name')), (e) => e.name).map(eventJson), d.events.index);
  });
}
