import type { CancelSignal } from '../../util/cancel.js';
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { assertServiceName, errors, inAnswers, type Instance } from '@beacon/core';
import type { ApiDeps } from '../deps.js';
import { AnswerCache } from '../answer-cache.js';
import { IndexWaiters } from '../../util/index-waiters.js';
import { blockingWait, flag, list } from '../query.js';
import { BlockingQuery, DcQuery, InstanceSchema, readErrors } from '../schemas.js';
import type { CatalogReader } from '../../catalog/types.js';
import { answerWithFailover, failoverOrder, parseFailover, type FailoverPolicy } from '../../federation/failover.js';
import { markDatacenter } from '../datacenter.js';
import { authorize, filterReadable } from '../../acl/decide.js';
import { parkRead, type IndexWait } from '../park.js';

type Deps = Pick<ApiDeps, 'catalog' | 'random' | 'metrics' | 'clock' | 'limits' | 'federation' | 'acl'>;

export interface InstanceFilter {
  passing: boolean;
  tags: string[];
  meta: [string, string][];
  zone: string | undefined;
}

export function matches(i: Instance, f: InstanceFilter): boolean {
  if (f.passing && !inAnswers(i, true)) return false;
  if (f.zone !== undefined && i.zone !== f.zone) return false;
  for (const t of f.tags) if (!i.tags.includes(t)) return false;
  for (const [k, v] of f.meta) if (i.meta[k] !== v) return false;
  return true;
}

const NO_FILTER: InstanceFilter = { passing: false, tags: [], meta: [], zone: undefined };

/** The instance filter a query string asks for: `passing`, `tag`, `zone`, `meta.<key>=<value>`. */
function instanceFilter(q: Record<string, unknown> & { passing?: string; tag?: string[]; zone?: string }): InstanceFilter {
  return {
    passing: q.passing !== undefined && flag(q.passing === '' ? 'true' : q.passing),
    tags: list(q.tag),
    zone: q.zone,
    meta: Object.keys(q)
      .filter((k) => k.startsWith('meta.'))
      .sort()
      .map((k) => [k.slice(5), String(q[k])]),
  };
}

/** Answers to different filters are cached apart; the same filter always gives the same key. */
function filterKey(f: InstanceFilter): string {
  return `${f.passing ? 'p' : ''}|${f.zone ?? ''}|${f.tags.join(',')}|${f.meta.map(([k, v]) => `${k}=${v}`).join('&')}`;
}

/** A read blocks only when it names an index past 0 (Consul's rule: 0 or none answers at once). */
function blocks(minIndex: number | undefined): minIndex is number {
  return minIndex !== undefined && minIndex !== 0;
}

function hasAny(o: object): boolean {
  for (const _ in o) return true;
  return false;
}

/**
 * Service listing and the instances of one service: blocking, served from cached bytes per (query,
 * index). With ACLs on, the listing holds only the services the token may read, and one service's
 * instances need `service:S read`.
 */
export const serviceRoutes: FastifyPluginAsyncTypebox<Deps> = async (app, { catalog, random, metrics, clock, limits, federation, acl }) => {
  const cache = new AnswerCache();
  const config = { acl: 'route' as const };

  /**
   * Parks the request until `current()` passes `minIndex` or the wait times out ({@link parkRead}).
   * `service`: the one service read, whose read right is checked again when the token changed.
   */
  async function block(current: () => number, wait: IndexWait, minIndex: number | undefined, waitParam: string | undefined, req: FastifyRequest, reply: FastifyReply, service?: string) {
    if (!blocks(minIndex)) return;
    const ms = blockingWait(waitParam, random);
    if (current() > minIndex) return;
    const tokenChanged = await parkRead(req, reply, 'blocking', minIndex, ms, wait, { limits, acl, metrics });
    if (tokenChanged && service !== undefined) authorize(req.authz, 'service', service, 'read');
  }

  // The service listing parks on the global index; one catalog listener wakes every parked reader.
  const listingWaiters = new IndexWaiters(clock);
  const off = catalog.onChange((c) => {
    if (c.services.size > 0) listingWaiters.wake(catalog.index);
  });
  app.addHook('onClose', async () => {
    off();
    listingWaiters.close();
  });
  const waitGlobal = (minIndex: number, ms: number, signal: CancelSignal) => listingWaiters.wait(catalog.index, minIndex, ms, signal);
  /** A remote DC's listing: parked until any of its services changes. */
  const waitRemoteGlobal = (reader: CatalogReader, minIndex: number, ms: number) => reader.waitForIndex(minIndex + 1, ms).catch(() => undefined);

  app.get(
    '/services',
    {
      config,
      schema: {
        operationId: 'listServices',
        tags: ['services'],
        summary: 'Services with their tags and instance counts by status',
        querystring: Type.Object({ ...BlockingQuery, ...DcQuery }),
        response: {
          200: Type.Array(
            Type.Object({
              name: Type.String(),
              index: Type.Integer(),
              tags: Type.Array(Type.String()),
              instances: Type.Integer(),
              ready: Type.Integer(),
              status: Type.Object({ passing: Type.Integer(), warning: Type.Integer(), critical: Type.Integer() }),
            }),
          ),
          ...readErrors('too_many_requests'),
        },
      },
    },
    async (req, reply) => {
      const dc = federation.datacenter(req.query.dc);
      const reader = dc.catalog;
      if (dc.local) await block(() => catalog.index, waitGlobal, req.query.index, req.query.wait, req, reply);
      else await block(() => reader.index, (m, ms) => waitRemoteGlobal(reader, m, ms), req.query.index, req.query.wait, req, reply);
      const index = reader.index;
      markDatacenter(reply, dc, clock);
      reply.header('X-Beacon-Index', String(index)).type('application/json');
      // Pre-serialized bytes: Fastify sends Buffers as they are; the schema documents their shape.
      // A token that may not read everything gets its own list: one cached answer per token would grow without bound.
      if (!req.authz.management) return reply.send(filterReadable(req.authz, 'service', reader.services(), (x) => x.name).items);
      return reply.send(cache.getOrBuild(`services@${dc.name}`, index, () => reader.services()) as never);
    },
  );

  /**
   * With failover the answer may come from any DC of the policy: a blocking read returns when the
   * service changes in any of them (an index from another answer returns at once).
   */
  async function answerFailover(req: FastifyRequest, reply: FastifyReply, name: string, policy: FailoverPolicy, pick: (insts: readonly Instance[]) => Instance[], minIndex: number | undefined, wait: string | undefined) {
    const first = answerWithFailover(federation, name, policy, pick);
    const readers = [catalog as CatalogReader, ...failoverOrder(federation, policy).flatMap((n) => federation.remoteView(n) ?? [])];
    await block(
      () => (first.entry.index === minIndex ? 0 : Number.MAX_SAFE_INTEGER),
      (_m, ms, signal) => waitAnyService(readers, name, ms, signal),
      minIndex,
      wait,
      req,
      reply,
      name,
    );
    const ans = answerWithFailover(federation, name, policy, pick);
    markDatacenter(reply, federation.datacenter(ans.datacenter), clock);
    reply.header('X-Beacon-Index', String(ans.entry.index)).type('application/json');
    return reply.send({ service: name, index: ans.entry.index, datacenter: ans.datacenter, failovers: ans.failovers, instances: ans.instances });
  }

  app.get(
    '/services/:name/instances',
    {
      config,
      schema: {
        operationId: 'listServiceInstances',
        tags: ['services'],
        summary: 'Instances of a service',
        description:
          'Filters: `passing` (only ready and passing), repeatable `tag` (all must match), `meta.<key>=<value>`, `zone`. ' +
          'Blocking: `?index=<X-Beacon-Index>&wait=30s` returns as soon as this service changes. ' +
          '`dc` reads another datacenter (from its followed view; `X-Beacon-Datacenter` names the DC, `X-Beacon-Stale-Age` its staleness in seconds). ' +
          '`failover=nearest:N,dcX,…` answers from the nearest DCs with a ready instance when the local DC has none (the server\'s per-service policy applies without it).',
        params: Type.Object({ name: Type.String({ minLength: 1, maxLength: 63 }) }),
        querystring: Type.Object(
          {
            passing: Type.Optional(Type.String({ maxLength: 8 })),
            tag: Type.Optional(Type.Array(Type.String({ maxLength: 255 }), { maxItems: 64 })),
            zone: Type.Optional(Type.String({ maxLength: 63 })),
            ...BlockingQuery,
            ...DcQuery,
            failover: Type.Optional(Type.String({ maxLength: 512, description: 'nearest:N and/or datacenter names, comma-separated' })),
          },
          { additionalProperties: Type.String({ maxLength: 512 }), description: 'meta.<key>=<value> filters' },
        ),
        response: {
          200: Type.Object({
            service: Type.String(),
            index: Type.Integer(),
            datacenter: Type.String({ description: 'the datacenter the answer came from' }),
            failovers: Type.Optional(Type.Integer({ description: 'with failover: how many other DCs were tried' })),
            instances: Type.Array(InstanceSchema),
          }),
          ...readErrors('not_found', 'unavailable', 'too_many_requests'),
        },
      },
    },
    // Not an async function: a read that does not block answers in this turn, without a promise
    // and the microtask Fastify would wait on; a blocking or failover read returns one.
    (req, reply) => {
      const { name } = req.params;
      assertServiceName(name);
      authorize(req.authz, 'service', name, 'read');
      const q = req.query as Record<string, unknown> & typeof req.query;
      // The common read has no query string: no filter to build, and the service name is its key.
      const filter = hasAny(q) ? instanceFilter(q) : NO_FILTER;
      const dc = federation.datacenter(req.query.dc);
      if (!dc.local && req.query.failover !== undefined) throw errors.invalid("failover starts from this server's own datacenter: give dc or failover, not both");
      const policy: FailoverPolicy | undefined = !dc.local ? undefined : req.query.failover !== undefined ? parseFailover(req.query.failover) : federation.failoverFor(name);
      const pick = (insts: readonly Instance[]) => insts.filter((i) => matches(i, filter));
      if (policy) return answerFailover(req, reply, name, policy, pick, req.query.index, req.query.wait);
      const reader = dc.catalog;
      const answer = () => {
        const entry = reader.service(name);
        markDatacenter(reply, dc, clock);
        reply.header('X-Beacon-Index', String(entry.index)).type('application/json');
        const key = filter === NO_FILTER && dc.local ? name : `${name}?${filterKey(filter)}@${dc.name}`;
        reply.send(cache.getOrBuild(key, entry.index, () => ({ service: name, index: entry.index, datacenter: dc.name, instances: pick(entry.instances) })) as never);
      };
      const minIndex = req.query.index;
      if (!blocks(minIndex)) return void answer();
      return block(() => reader.service(name).index, (m, ms, signal) => reader.waitForService(name, m, ms, signal), minIndex, req.query.wait, req, reply, name).then(answer);
    },
  );
};

/** Resolves when `name` changes in any of `readers` (each from its index now), the wait ends, or `signal` aborts. */
async function waitAnyService(readers: readonly CatalogReader[], name: string, ms: number, signal: CancelSignal): Promise<void> {
  const ac = new AbortController();
  const stop = () => ac.abort();
  signal.addEventListener('abort', stop, { once: true });
  try {
    await Promise.race(readers.map((r) => r.waitForService(name, r.service(name).index, ms, ac.signal)));
  } finally {
    signal.removeEventListener('abort', stop);
    ac.abort();
  }
}
