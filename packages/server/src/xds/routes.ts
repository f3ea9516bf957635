import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { Counter, Gauge } from 'prom-client';
import type { ApiDeps } from '../http/deps.js';
import { authorize } from '../acl/decide.js';
import { readErrors } from '../http/schemas.js';
import { RESOURCE_TYPES } from './protos.js';
import { PROFILES } from './resources.js';
import type { XdsServer } from './server.js';

const Mark = Type.Object({
  version: Type.String({ description: 'content hash of the resources sent' }),
  nonce: Type.String(),
  at: Type.Integer({ description: 'ms since epoch' }),
});

const ClientSchema = Type.Object({
  stream: Type.Integer({ description: 'stream number on this server' }),
  peer: Type.String(),
  node: Type.Object({ id: Type.String(), cluster: Type.String(), userAgent: Type.String() }),
  profile: Type.Union(PROFILES.map((p) => Type.Literal(p))),
  accessor: Type.String({ description: "AccessorID of the stream's token (anonymous without one, acl-disabled with ACLs off); never the secret" }),
  connectedAt: Type.Integer(),
  types: Type.Array(
    Type.Object({
      type: Type.Union(RESOURCE_TYPES.map((t) => Type.Literal(t))),
      subscribed: Type.Union([Type.Array(Type.String()), Type.Literal('*')]),
      sent: Type.Optional(Mark),
      ack: Type.Optional(Mark),
      nack: Type.Optional(Type.Composite([Mark, Type.Object({ message: Type.String() })])),
      nacks: Type.Integer({ description: 'NACKs on this stream since it opened' }),
    }),
  ),
});

/**
 * Makes the xDS server visible: `GET /api/v1/xds/clients` (each stream with its last ACK and
 * NACK per type) and counters on /metrics (NACKs are logged by the server itself).
 */
export function xdsPlugin(xds: XdsServer) {
  return async (app: FastifyInstance, deps: Pick<ApiDeps, 'metrics'>): Promise<void> => {
    const registers = [deps.metrics.registry];
    new Gauge({ name: 'beacon_xds_streams', help: 'Open xDS (ADS) streams', registers, collect() { this.set(xds.streamCount); } });
    const sent = new Counter({ name: 'beacon_xds_responses_total', help: 'xDS responses sent, by resource type', labelNames: ['type'], registers });
    const acks = new Counter({ name: 'beacon_xds_acks_total', help: 'xDS responses ACKed, by resource type', labelNames: ['type'], registers });
    const nacks = new Counter({ name: 'beacon_xds_nacks_total', help: 'xDS responses NACKed (rejected) by clients, by resource type', labelNames: ['type'], registers });
    // Every label set from the start, so a rate() sees the first NACK.
    for (const type of RESOURCE_TYPES) for (const c of [sent, acks, nacks]) c.inc({ type }, 0);
    const pushes = new Counter({ name: 'beacon_xds_pushes_total', help: 'Coalesced catalog changes offered to every xDS stream', registers });
    xds.countWith({ pushed: () => pushes.inc(), sent: (type) => sent.inc({ type }), acked: (type) => acks.inc({ type }), nacked: (type) => nacks.inc({ type }) });

    app.get(
      '/api/v1/xds/clients',
      {
        // Who is connected and what it follows: operator:read, like the other views of the servers.
        config: { acl: 'route' },
        schema: {
          operationId: 'listXdsClients',
          tags: ['status'],
          summary: 'xDS clients connected to this server, with their subscriptions and last ACK and NACK per type',
          response: { 200: Type.Object({ clients: Type.Array(ClientSchema) }), ...readErrors() },
        },
      },
      async (req) => {
        authorize(req.authz, 'operator', 'read');
        return { clients: xds.clients() };
      },
    );
  };
}
