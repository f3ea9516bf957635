import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { assertServiceName, errors, inAnswers, type Instance } from '@beacon/core';
import type { ApiDeps } from '../deps.js';
import { authorize, filterReadable } from '../../acl/decide.js';
import { followToken } from '../../acl/revocation.js';
import type { Authorizer } from '../../acl/types.js';
import { AnswerCache } from '../answer-cache.js';
import { IndexWaiters } from '../../util/index-waiters.js';
import { blockingWait, flag, list } from '../query.js';
import { BlockingQuery, InstanceSchema, readErrors } from '../schemas.js';

type Deps = Pick<ApiDeps, 'catalog' | 'random' | 'metrics' | 'clock' | 'limits' | 'acl'>;

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

/**
 * Service listing and the instances of one service: blocking, served from cached bytes per (query,
 * index). With ACLs on, the listing holds only the services the token may read, and one service's
 * instances need `service:S read`.
 */
export const serviceRoutes: FastifyPluginAsyncTypebox<Deps> = async (app, { catalog, random, metrics, clock, limits, acl }) => {
  const cache = new AnswerCache();
  const config = { acl: 'route' as const };

  /**
   * Parks the request until the service's index passes `minIndex` or the wait ends; client
   * hang-ups end it early, and so does a change to the request's token: the caller then checks
   * its rights again (a deleted token answers 403 at once, not at the end of the wait).
   */
  async function block(name: string | undefined, minIndex: number | undefined, wait: string | undefined, req: FastifyRequest, reply: FastifyReply) {
    if (minIndex === undefined || minIndex === 0) return;
    const ms = blockingWait(wait, random);
    if ((name === undefined ? catalog.index : catalog.service(name).index) > minIndex) return;
    const release = limits.open(limits.blocking, req, reply);
    const raw = reply.raw;
    const ac = new AbortController();
    const onClose = () => ac.abort();
    raw.once('close', onClose);
    let tokenChanged = false;
    let rights: Authorizer | undefined;
    const unfollow = followToken(acl, req, (next) => {
      tokenChanged = true;
      rights = next;
      ac.abort();
    });
    metrics.watcherOpened('blocking');
    try {
      if (name === undefined) await waitGlobal(minIndex, ms, ac.signal);
      else await catalog.waitForService(name, minIndex, ms, ac.signal);
    } finally {
      release();
      unfollow();
      metrics.watcherClosed('blocking');
      raw.removeListener('close', onClose);
    }
    if (tokenChanged) {
      if (!rights) throw errors.forbidden('ACL not found');
      req.authz = rights;
      if (name !== undefined) authorize(req.authz, 'service', name, 'read');
      return;
    }
    // The write that woke us is answered a few microtasks from now: let it go first, so a writer's
    // latency does not grow with the number of readers parked on what it changed.
    if (!ac.signal.aborted) await new Promise<void>((resolve) => setImmediate(resolve));
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
  const waitGlobal = (minIndex: number, ms: number, signal: AbortSignal) => listingWaiters.wait(catalog.index, minIndex, ms, signal);

  app.get(
    '/services',
    {
      config,
      schema: {
        operationId: 'listServices',
        tags: ['services'],
        summary: 'Services with their tags and instance counts by status',
        querystring: Type.Object(BlockingQuery),
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
      await block(undefined, req.query.index, req.query.wait, req, reply);
      const index = catalog.index;
      reply.header('X-Beacon-Index', String(index)).type('application/json');
      // Pre-serialized bytes: Fastify sends Buffers as they are; the schema documents their shape.
      // A token that may not read everything gets its own list: one cached answer per token would grow without bound.
      if (!req.authz.management) return reply.send(filterReadable(req.authz, 'service', catalog.services(), (s) => s.name).items);
      return reply.send(cache.getOrBuild('services', index, () => catalog.services()) as never);
    },
  );

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
          'Blocking: `?index=<X-Beacon-Index>&wait=30s` returns as soon as this service changes.',
        params: Type.Object({ name: Type.String({ minLength: 1, maxLength: 63 }) }),
        querystring: Type.Object(
          {
            passing: Type.Optional(Type.String({ maxLength: 8 })),
            tag: Type.Optional(Type.Array(Type.String({ maxLength: 255 }), { maxItems: 64 })),
            zone: Type.Optional(Type.String({ maxLength: 63 })),
            ...BlockingQuery,
          },
          { additionalProperties: Type.String({ maxLength: 512 }), description: 'meta.<key>=<value> filters' },
        ),
        response: { 200: Type.Object({ service: Type.String(), index: Type.Integer(), instances: Type.Array(InstanceSchema) }), ...readErrors('too_many_requests') },
      },
    },
    async (req, reply) => {
      const { name } = req.params;
      assertServiceName(name);
      authorize(req.authz, 'service', name, 'read');
      const q = req.query as Record<string, unknown> & typeof req.query;
      const filter: InstanceFilter = {
        passing: req.query.passing !== undefined && flag(req.query.passing === '' ? 'true' : req.query.passing),
        tags: list(req.query.tag),
        zone: req.query.zone,
        meta: Object.keys(q)
          .filter((k) => k.startsWith('meta.'))
          .sort()
          .map((k) => [k.slice(5), String(q[k])]),
      };
      await block(name, req.query.index, req.query.wait, req, reply);
      const entry = catalog.service(name);
      const key = `${name}?${filter.passing ? 'p' : ''}|${filter.zone ?? ''}|${filter.tags.join(',')}|${filter.meta.map(([k, v]) => `${k}=${v}`).join('&')}`;
      reply.header('X-Beacon-Index', String(entry.index)).type('application/json');
      return reply.send(
        cache.getOrBuild(key, entry.index, () => ({ service: name, index: entry.index, instances: entry.instances.filter((i) => matches(i, filter)) })) as never,
      );
    },
  );
};
