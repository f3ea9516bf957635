import { authorize } from '../acl/decide.js';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { Counter, Gauge } from 'prom-client';
import type { ApiDeps } from '../http/deps.js';
import { readErrors } from '../http/schemas.js';
import type { SelfPreservation } from './self-preservation.js';

const StatusSchema = Type.Object({
  enabled: Type.Boolean(),
  active: Type.Boolean({ description: 'lease eviction is paused' }),
  since: Type.Optional(Type.Number()),
  reason: Type.Optional(Type.String()),
  leases: Type.Integer({ description: 'leases counted (deliberate deregistrations never are)' }),
  atRisk: Type.Integer({ description: 'leases whose holder has not renewed them for most of their TTL' }),
  recentExpiries: Type.Integer({ description: 'leases that expired naturally within the window' }),
  share: Type.Number({ description: '(atRisk + recentExpiries) / (leases + recentExpiries)' }),
  threshold: Type.Number(),
  resumeThreshold: Type.Number(),
  held: Type.Integer({ description: 'leases whose expiry is being held off right now' }),
  preservedRenewals: Type.Integer({ description: 'renewals made by preservation rather than by the holders' }),
  activations: Type.Integer({ description: 'times eviction was paused since start' }),
});

/**
 * Makes self-preservation visible: `GET /api/v1/self-preservation`, and gauges on /metrics
 * (the log lines come from the module itself).
 */
export function selfPreservationPlugin(preservation: SelfPreservation) {
  return async (app: FastifyInstance, deps: Pick<ApiDeps, 'metrics'>): Promise<void> => {
    const registers = [deps.metrics.registry];
    new Gauge({
      name: 'beacon_self_preservation_active',
      help: '1 while lease eviction is paused because too many leases lapsed at once',
      registers,
      collect() {
        this.set(preservation.status().active ? 1 : 0);
      },
    });
    new Gauge({
      name: 'beacon_leases_at_risk_ratio',
      help: 'Share of leases about to expire or expired within the self-preservation window',
      registers,
      collect() {
        this.set(preservation.status().share);
      },
    });
    new Gauge({
      name: 'beacon_self_preservation_held_leases',
      help: 'Leases past their deadline kept alive by self-preservation',
      registers,
      collect() {
        this.set(preservation.status().held);
      },
    });
    const renewals = new Counter({ name: 'beacon_self_preservation_renewals_total', help: 'Lease renewals made by self-preservation', registers });
    let seen = preservation.status().preservedRenewals;
    preservation.onChange((s) => {
      if (s.preservedRenewals > seen) renewals.inc(s.preservedRenewals - seen);
      seen = s.preservedRenewals;
    });

    app.get(
      '/api/v1/self-preservation',
      {
        config: { acl: 'route' },
        schema: {
          operationId: 'getSelfPreservation',
          tags: ['status'],
          summary: 'Self-preservation: whether lease eviction is paused, and why',
          response: { 200: StatusSchema, ...readErrors() },
        },
      },
      async (req) => {
        authorize(req.authz, 'operator', 'read');
        return preservation.status();
      },
    );
  };
}
