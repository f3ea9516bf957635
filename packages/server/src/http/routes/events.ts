import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { CHANGE_KINDS, LIMITS, errors, type ChangeKind } from '@beacon/core';
import type { ApiDeps } from '../deps.js';
import { ChangeEventSchema, readErrors } from '../schemas.js';
import { filterReadable } from '../../acl/decide.js';

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
};
