import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { ApiDeps } from '../deps.js';
import { openReadErrors } from '../schemas.js';
import { READINESS_CHECKS, readiness } from '../readiness.js';

type Deps = Pick<ApiDeps, 'catalog' | 'clock' | 'info' | 'store' | 'listeners'>;

const ReadinessSchema = Type.Object(
  {
    status: Type.Union([Type.Literal('ready'), Type.Literal('not_ready')]),
    checks: Type.Array(Type.Object({ name: Type.Union(READINESS_CHECKS.map((n) => Type.Literal(n))), ok: Type.Boolean(), reason: Type.String() })),
  },
  { description: 'what /readyz answers (there with 503 when not ready)' },
);

export const statusRoutes: FastifyPluginAsyncTypebox<Deps> = async (app, deps) => {
  app.get(
    '/status',
    {
      // Probes and dashboards ask it without a token; it tells counts, not names.
      config: { acl: 'open' },
      schema: {
        security: [{}],
        operationId: 'getStatus',
        tags: ['status'],
        summary: 'Server status',
        response: {
          200: Type.Object({
            version: Type.String(),
            node: Type.String(),
            datacenter: Type.String(),
            index: Type.Integer(),
            store: Type.String(),
            startedAt: Type.Number(),
            uptimeMs: Type.Number(),
            services: Type.Integer(),
            instances: Type.Integer(),
            stale: Type.Boolean({ description: 'reads may be behind the store (its watch is broken or not confirmed current)' }),
            staleForMs: Type.Optional(Type.Number({ description: 'while stale: for how long' })),
            readiness: ReadinessSchema,
            insecureOpen: Type.Boolean({ description: 'listening beyond loopback without access control (--insecure-open)' }),
            acl: Type.Boolean({ description: 'access control on (--acl): requests need a token' }),
            warnings: Type.Array(Type.String(), { description: "what an operator must know about this server's exposure; empty when none" }),
          }),
          ...openReadErrors(),
        },
      },
    },
    async () => {
      const { catalog, clock, info } = deps;
      const services = catalog.services();
      return {
        version: info.version,
        node: info.node,
        datacenter: info.datacenter,
        index: catalog.index,
        store: info.storeKind,
        startedAt: info.startedAt,
        uptimeMs: clock.now() - info.startedAt,
        services: services.length,
        instances: services.reduce((n, s) => n + s.instances, 0),
        stale: catalog.stale,
        ...(catalog.staleSince !== undefined ? { staleForMs: clock.now() - catalog.staleSince } : {}),
        readiness: await readiness(deps),
        insecureOpen: info.insecureOpen,
        acl: info.acl,
        warnings: info.warnings,
      };
    },
  );
};
