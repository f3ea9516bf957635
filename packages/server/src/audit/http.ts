import type { FastifyInstance, FastifyRequest } from 'fastify';
import { WRITE_METHODS } from '../http/limits/index.js';
import type { AuditInterface, AuditSink } from './log.js';

declare module 'fastify' {
  interface FastifyRequest {
    /**
     * What the request acts on, as the route judged it (`service:web`, `key:app/cfg`); set where
     * the ACL decision is asked, so a body-borne name (a registration) is in the audit line too.
     */
    auditTarget: string | null;
  }
}

/** Says what the request acts on, for its audit line (the last resource a route asked the ACL decision about). */
export function noteTarget(req: FastifyRequest, kind: string, name: string): void {
  req.auditTarget = name === '' ? kind : `${kind}:${name}`;
}

/** Unmatched paths and KV keys are the client's text: an audit line stays one short line whatever was sent. */
const MAX_FIELD = 512;
function clip(s: string): string {
  return s.length > MAX_FIELD ? `${s.slice(0, MAX_FIELD)}…` : s;
}

/** Which API a URL belongs to (the routes are mounted under these prefixes in http/app.ts and the adapters). */
export function interfaceOf(url: string): AuditInterface {
  if (url.startsWith('/api/v1/watch')) return 'sse';
  if (url.startsWith('/v1/')) return 'consul';
  if (url.startsWith('/eureka/')) return 'eureka';
  return 'native';
}

/** The route's own params when the route named no target itself (`/v1/kv/*` gives the key). */
function paramsTarget(req: FastifyRequest): string {
  const p = req.params as Record<string, string> | undefined;
  if (!p) return '';
  return Object.values(p).filter((v) => typeof v === 'string' && v !== '').join('/');
}

/**
 * Records every write and every refusal (401, 403) on every HTTP API, after the answer is sent:
 * the line never delays the answer, and the status in it is the one the client got.
 */
export function installAudit(app: FastifyInstance, sink: AuditSink | undefined): void {
  app.decorateRequest('auditTarget', null);
  if (!sink) return;
  app.addHook('onResponse', (req, reply, done) => {
    const status = reply.statusCode;
    if (WRITE_METHODS.has(req.method) || status === 401 || status === 403) {
      const path = req.url.split('?', 1)[0]!;
      sink.record({
        // `unresolved` when the presented secret named no token (the resolver refused it), or
        // the request matched no route (no route, no token resolved).
        accessor: (req.authz as typeof req.authz | null)?.accessorId ?? 'unresolved',
        remote: req.ip,
        interface: interfaceOf(path),
        action: `${req.method} ${clip(req.routeOptions.url ?? path)}`,
        target: clip(req.auditTarget ?? paramsTarget(req)),
        result: status,
      });
    }
    done();
  });
}
