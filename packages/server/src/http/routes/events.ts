import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { CHANGE_KINDS, LIMITS, assertServiceName, errors, type ChangeKind } from '@beacon/core';
import type { ApiDeps } from '../deps.js';
import { ChangeEventSchema, InstanceSchema, readErrors } from '../schemas.js';
import { diffService } from '../../catalog/diff.js';
import { authorize, filterReadable } from '../../acl/decide.js';

type Deps = Pick<ApiDeps, 'catalog'>;

/** The bounded history of changes, with their reasons; with ACLs on, of the services the token may read. */
export const eventRoutes: FastifyPluginAsyncTypebox<Deps> = async (app, { catalog }) => {
  app.get(
    '/events',
    {
      config: { acl: 'route' },
      schema: {
        operationId: 'listEvents',
        tags: ['events'],
        summary: 'History of changes with their reasons (newest last)',
        querystring: Type.Object({
          service: Type.Optional(Type.String({ maxLength: 63 })),
          instance: Type.Optional(Type.String({ maxLength: 192 })),
          kind: Type.Optional(Type.String({ maxLength: 32 })),
          since: Type.Optional(Type.Integer({ minimum: 0 })),
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: LIMITS.historySize })),
        }),
        response: { 200: Type.Object({ index: Type.Integer(), floor: Type.Integer(), events: Type.Array(ChangeEventSchema) }), ...readErrors() },
      },
    },
    async (req, reply) => {
      const { service, instance, kind, since, limit } = req.query;
      if (kind !== undefined && !CHANGE_KINDS.includes(kind as ChangeKind)) throw errors.invalid(`kind must be one of ${CHANGE_KINDS.join(', ')}`);
      reply.header('X-Beacon-Index', String(catalog.index));
      return {
        index: catalog.index,
        floor: catalog.historyFloor,
        events: filterReadable(req.authz, 'service', catalog.history({
          ...(service !== undefined ? { service } : {}),
          ...(instance !== undefined ? { instanceId: instance } : {}),
          ...(kind !== undefined ? { kind: kind as ChangeKind } : {}),
          ...(since !== undefined ? { since } : {}),
          limit: limit ?? 1000,
        }), (e) => e.service).items,
      };
    },
  );

  app.get(
    '/services/:name/diff',
    {
      config: { acl: 'route' },
      schema: {
        operationId: 'diffService',
        tags: ['events'],
        summary: 'How a service\'s instances differ between two indexes',
        description:
          'Built from the retained history: instances added, removed and changed (with the fields that differ) ' +
          'after `from` up to `to` (default: now). `from` older than the history answers 410 `compacted`.',
        params: Type.Object({ name: Type.String({ maxLength: 63 }) }),
        querystring: Type.Object({ from: Type.Integer({ minimum: 0 }), to: Type.Optional(Type.Integer({ minimum: 0 })) }),
        response: {
          200: Type.Object({
            service: Type.String(),
            from: Type.Integer(),
            to: Type.Integer(),
            added: Type.Array(InstanceSchema),
            removed: Type.Array(Type.Object({ id: Type.String(), before: Type.Optional(InstanceSchema) })),
            changed: Type.Array(
              Type.Object({ id: Type.String(), before: Type.Optional(InstanceSchema), after: InstanceSchema, fields: Type.Array(Type.String()) }),
            ),
          }),
          ...readErrors('compacted'),
        },
      },
    },
    async (req, reply) => {
      const { name } = req.params;
      assertServiceName(name);
      authorize(req.authz, 'service', name, 'read');
      const to = req.query.to ?? catalog.index;
      const { from } = req.query;
      if (to < from) throw errors.invalid(`to (${to}) is before from (${from})`);
      if (from < catalog.historyFloor) throw errors.compacted(`index ${from} is older than the retained history (from ${catalog.historyFloor})`);
      reply.header('X-Beacon-Index', String(catalog.index));
      return diffService(name, catalog.historyEntries({ service: name }), from, to);
    },
  );
};
