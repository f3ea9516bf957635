import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { readErrors } from '../http/schemas.js';
import { authorize } from '../acl/decide.js';
import type { ClusterInfo } from './membership.js';

const MemberSchema = Type.Object({
  node: Type.String(),
  httpUrl: Type.String(),
  version: Type.String(),
  startedAt: Type.Number(),
  joinedIndex: Type.Integer(),
});

/** `GET /api/v1/cluster`: this server, the live members and the one reported as leader. */
export function clusterPlugin(cluster: ClusterInfo) {
  return async (app: FastifyInstance): Promise<void> => {
    app.get(
      '/api/v1/cluster',
      {
        config: { acl: 'route' },
        schema: {
          operationId: 'getCluster',
          tags: ['status'],
          summary: 'Cluster membership (clustered mode)',
          response: {
            200: Type.Object({
              self: Type.String(),
              alive: Type.Boolean(),
              leader: Type.Union([Type.String(), Type.Null()]),
              members: Type.Array(MemberSchema),
            }),
            ...readErrors(),
          },
        },
      },
      async (req) => {
        authorize(req.authz, 'operator', 'read');
        return { self: cluster.self, alive: cluster.alive, leader: cluster.leader()?.node ?? null, members: cluster.members() };
      },
    );
  };
}
