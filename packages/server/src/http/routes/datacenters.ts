import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { ApiDeps } from '../deps.js';
import { readErrors } from '../schemas.js';
import { authorize } from '../../acl/decide.js';

type Deps = Pick<ApiDeps, 'federation'>;

const Rtt = Type.Optional(Type.Number({ description: 'measured round-trip time in ms (lowest of the last 5 pings); absent while unreachable' }));

/** The datacenters this server knows, local first then nearest first, with the state of each followed view. */
export const datacenterRoutes: FastifyPluginAsyncTypebox<Deps> = async (app, { federation }) => {
  app.get(
    '/datacenters',
    {
      // Other datacenters' server addresses and streams: operator:read, like /members.
      config: { acl: 'route' },
      schema: {
        operationId: 'listDatacenters',
        tags: ['status'],
        summary: 'Datacenters, local first, then by measured round-trip time',
        response: {
          200: Type.Array(
            Type.Object({
              name: Type.String(),
              local: Type.Boolean(),
              rttMs: Rtt,
              index: Type.Integer({ description: "the DC's own index, as last seen" }),
              synced: Type.Boolean({ description: 'a full view of the DC has arrived' }),
              stale: Type.Boolean({ description: 'the stream to the DC is down: reads serve the last view' }),
              staleForMs: Type.Optional(Type.Number()),
              servers: Type.Array(Type.Object({ url: Type.String(), rttMs: Rtt })),
              stream: Type.Optional(
                Type.Object({
                  connects: Type.Integer(),
                  resets: Type.Integer({ description: 'full listings received' }),
                  resumes: Type.Integer({ description: 'reconnects that resumed from Last-Event-ID without a full listing' }),
                  server: Type.Optional(Type.String({ description: 'the server the stream is open to' })),
                }),
              ),
            }),
          ),
          ...readErrors(),
        },
      },
    },
    async (req) => {
      authorize(req.authz, 'operator', 'read');
      return federation.status();
    },
  );
};
