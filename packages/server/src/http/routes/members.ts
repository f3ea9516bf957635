import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { AddressInfo } from 'node:net';
import { listMembers, serverUrl } from '../../cluster/members.js';
import type { ApiDeps } from '../deps.js';
import { readErrors } from '../schemas.js';
import { authorize } from '../../acl/decide.js';

type Deps = Pick<ApiDeps, 'catalog' | 'store' | 'clock' | 'info' | 'cluster'>;

export const MemberViewSchema = Type.Object({
  node: Type.String(),
  httpUrl: Type.String(),
  version: Type.String(),
  startedAt: Type.Number(),
  joinedIndex: Type.Integer(),
  self: Type.Boolean(),
  leader: Type.Boolean(),
  instances: Type.Integer({ description: 'instances whose lease and check timers this server keeps' }),
  checks: Type.Integer({ description: 'active checks this server runs' }),
  lastSeenAt: Type.Union([Type.Number(), Type.Null()], { description: 'last renewal of its membership; null when its lease has just gone' }),
});

/** `GET /api/v1/members`: the servers (one in embedded mode), their addresses and what each owns. */
export const memberRoutes: FastifyPluginAsyncTypebox<Deps> = async (app, deps) => {
  app.get(
    '/members',
    {
      // The servers' addresses and load: operator:read, like the other views of the cluster.
      config: { acl: 'route' },
      schema: {
        operationId: 'listMembers',
        tags: ['status'],
        summary: 'The servers, their addresses, the work each owns and when each was last seen',
        response: { 200: Type.Object({ members: Type.Array(MemberViewSchema) }), ...readErrors() },
      },
    },
    async (req) => {
      authorize(req.authz, 'operator', 'read');
      const a = app.server.address() as AddressInfo;
      return { members: await listMembers(deps, serverUrl(app.server, a.address, a.port)) };
    },
  );
};
