import type { FastifyInstance } from 'fastify';
import { errors } from '@beacon/core';
import type { PreparedQuery, QueryRecord } from '../../../federation/queries.js';
import { executeQuery } from '../../../federation/queries.js';
import type { ConsulContext } from '../context.js';
import { goDuration } from '../duration.js';
import { forwardToDatacenter, jsonBody, send } from '../http.js';
import { Fields } from '../registration.js';
import { ROUTE, mayRead } from '../acl.js';

type Deps = Pick<ConsulContext, 'queries' | 'federation' | 'scope'>;

/** A `/v1/query` body (Consul's PreparedQueryDefinition) as Beacon stores it. */
function parseQuery(body: unknown): QueryRecord {
  const f = new Fields(body, 'prepared query');
  const svc = f.sub('service');
  if (!svc) throw errors.invalid('Must provide a Service name to query');
  const fo = svc.sub('failover');
  const dcs = (fo?.strings('datacenters') ?? []).map((x) => x.toLowerCase());
  const dns = f.sub('dns');
  const ttlMs = dns?.duration('ttl');
  const session = f.str('session');
  return {
    name: (f.str('name') ?? '').toLowerCase(),
    service: (svc.str('service') ?? '').toLowerCase(),
    failover: { nearest: Math.min(fo?.uint('nearestn') ?? 0, 64), datacenters: [...new Set(dcs)] },
    onlyPassing: svc.bool('onlypassing') ?? false,
    tags: svc.strings('tags') ?? [],
    ...(ttlMs !== undefined && ttlMs > 0 ? { dnsTtlS: Math.max(1, Math.round(ttlMs / 1000)) } : {}),
    ...(session ? { session } : {}),
  };
}

function queryJson(q: PreparedQuery): Record<string, unknown> {
  return {
    ID: q.id,
    Name: q.name,
    Session: q.session ?? '',
    Token: '',
    Service: {
      Service: q.service,
      Failover: { NearestN: q.failover.nearest, Datacenters: q.failover.datacenters },
      IgnoreCheckIDs: [],
      OnlyPassing: q.onlyPassing,
      Near: '',
      Tags: q.tags,
      NodeMeta: {},
      ServiceMeta: {},
      Connect: { Enabled: false },
    },
    DNS: { TTL: q.dnsTtlS !== undefined ? goDuration(q.dnsTtlS * 1000) : '' },
    CreateIndex: q.createIndex,
    ModifyIndex: q.modifyIndex,
  };
}

/** /v1/query…: Consul's prepared queries, stored in this DC's store, run with failover to other DCs. */
export async function queryRoutes(app: FastifyInstance, d: Deps): Promise<void> {
  const { queries } = d;
  // `?dc=` another datacenter: its queries live in its store; ask it. Only execute is open to
  // tokens without management (the rest is management-only), and what it answers is the caller's
  // to see only when the caller may read the query's service, as here.
  app.addHook(
    'preHandler',
    forwardToDatacenter(d.federation, {
      answer: (req, reply, body) => {
        const b = body as { Service?: unknown; Nodes?: unknown };
        if (typeof b !== 'object' || b === null || !Array.isArray(b.Nodes)) return body;
        return typeof b.Service === 'string' && mayRead(req, reply, 'service', b.Service) ? body : { ...b, Nodes: [] };
      },
    }),
  );

  const find = (idOrName: string): PreparedQuery => {
    const q = queries.resolve(idOrName);
    if (!q) throw errors.notFound(`Query not found: ${idOrName}`);
    return q;
  };

  app.post('/query', async (req, reply) => {
    const id = await queries.create(parseQuery(jsonBody(req)));
    return send(req, reply, { ID: id });
  });

  app.get('/query', async (req, reply) => send(req, reply, queries.list().map(queryJson), queries.index));

  app.get<{ Params: { id: string } }>('/query/:id', async (req, reply) => {
    const q = queries.get(req.params.id);
    if (!q) throw errors.notFound(`Query not found: ${req.params.id}`);
    return send(req, reply, [queryJson(q)], q.modifyIndex);
  });

  app.put<{ Params: { id: string } }>('/query/:id', async (req, reply) => {
    await queries.update(req.params.id, parseQuery(jsonBody(req)));
    return send(req, reply, null);
  });

  app.delete<{ Params: { id: string } }>('/query/:id', async (req, reply) => {
    await queries.delete(req.params.id);
    return send(req, reply, null);
  });

  // Executing needs `service:S read` on the query's service, in whichever DC the answer comes
  // from: without it the answer has no nodes (marked filtered), as Consul filters it.
  app.get<{ Params: { id: string } }>('/query/:id/execute', ROUTE, async (req, reply) => {
    const q = find(req.params.id);
    const a = executeQuery(d.federation, q);
    const nodes = mayRead(req, reply, 'service', q.service) ? a.instances : [];
    const view = d.scope(a.datacenter).view;
    return send(
      req,
      reply,
      {
        Service: q.service,
        Namespace: '',
        Nodes: nodes.map((i) => view.healthEntry(i)),
        DNS: { TTL: q.dnsTtlS !== undefined ? goDuration(q.dnsTtlS * 1000) : '' },
        Datacenter: a.datacenter,
        Failovers: a.failovers,
      },
      a.entry.index,
    );
  });

  app.get<{ Params: { id: string } }>('/query/:id/explain', async (req, reply) => {
    const q = find(req.params.id);
    return send(req, reply, { Query: queryJson(q) }, q.modifyIndex);
  });
}
