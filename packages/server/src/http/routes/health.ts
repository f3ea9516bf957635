import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { ApiDeps } from '../deps.js';
import { readiness, type Readiness } from '../readiness.js';

type Deps = Pick<ApiDeps, 'store' | 'catalog' | 'clock' | 'listeners'>;

const Verbose = Type.Object({ verbose: Type.Optional(Type.String()) });

/** Kubernetes' own `?verbose` form: one `[+]name ok` / `[-]name failed: reason` line per check. */
function asText(r: Readiness): string {
  const lines = r.checks.map((c) => (c.ok ? `[+]${c.name} ok` : `[-]${c.name} failed: ${c.reason}`));
  return `${lines.join('\n')}\n${r.status === 'ready' ? 'readyz check passed' : 'readyz check failed'}\n`;
}

/**
 * Probes for orchestrators, at the root where they are looked for: /healthz says the process
 * serves (restart it if not), /readyz whether it should be sent traffic (take it out if not).
 */
export const healthRoutes: FastifyPluginAsyncTypebox<Deps> = async (app, deps) => {
  // No check of the store here: a liveness probe that failed on an etcd outage would restart every
  // server at once, and a restart cannot bring etcd back.
  app.get('/healthz', { config: { acl: 'open' }, schema: { hide: true, querystring: Verbose } }, async (req, reply) => {
    if (req.query.verbose !== undefined) return reply.type('text/plain').send('[+]ping ok\nhealthz check passed\n');
    return { status: 'ok', checks: [{ name: 'ping', ok: true, reason: 'serving' }] };
  });
  app.get('/readyz', { config: { acl: 'open' }, schema: { hide: true, querystring: Verbose } }, async (req, reply) => {
    const r = await readiness(deps);
    reply.code(r.status === 'ready' ? 200 : 503).header('cache-control', 'no-store');
    if (req.query.verbose !== undefined) return reply.type('text/plain').send(asText(r));
    return r;
  });
};
