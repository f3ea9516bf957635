import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { ApiDeps } from '../deps.js';
import { readErrors } from '../schemas.js';

type Deps = Pick<ApiDeps, 'catalog' | 'clock' | 'info'>;

export const statusRoutes: FastifyPluginAsyncTypebox<Deps> = async (app, { catalog, clock, info }) => {
  app.get(
    '/status',
    {
      schema: {
        operationId: 'getStatus',
        tags: ['status'],
        summary: 'Server status',
        response: {
          200: Type.Object({
            version: Type.String(),
            node: Type.String(),
            index: Type.Integer(),
            store: Type.String(),
            startedAt: Type.Number(),
            uptimeMs: Type.Number(),
            services: Type.Integer(),
            instances: Type.Integer(),
            stale: Type.Boolean({ description: 'reads may be behind the store (its watch is broken or not confirmed current)' }),
            staleForMs: Type.Optional(Type.Number({ description: 'while stale: for how long' })),
          }),
          ...readErrors(),
        },
      },
    },
    async () => {
      const services = catalog.services();
      return {
        version: info.version,
        node: info.node,
        index: catalog.index,
        store: info.storeKind,
        startedAt: info.startedAt,
        uptimeMs: clock.now() - info.startedAt,
        services: services.length,
        instances: services.reduce((n, s) => n + s.instances, 0),
        stale: catalog.stale,
        ...(catalog.staleSince !== undefined ? { staleForMs: clock.now() - catalog.staleSince } : {}),
      };
    },
  );
};
