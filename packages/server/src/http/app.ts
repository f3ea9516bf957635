import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type preValidationHookHandler } from 'fastify';
import swagger from '@fastify/swagger';
import type { SecureContextOptions } from 'node:tls';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { LIMITS } from '@beacon/core';
import { requestValidators } from './validation.js';
import type { ApiDeps } from './deps.js';
import { installAudit } from '../audit/http.js';
import type { AuditSink } from '../audit/log.js';
import { frameworkErrors, installErrorHandling } from './errors.js';
import { eventRoutes } from './routes/events.js';
import { instanceRoutes } from './routes/instances.js';
import { memberRoutes } from './routes/members.js';
import { serviceRoutes } from './routes/services.js';
import { healthRoutes } from './routes/health.js';
import { statusRoutes } from './routes/status.js';
import { watchRoutes } from './routes/watch.js';
import { snapshotRoutes } from './routes/snapshot.js';
import { crossSiteGuard, SAFE_METHODS } from './cross-site.js';
import { ownHooks } from './route-hooks.js';
import { datacenterRoutes } from './routes/datacenters.js';
import { aclRoutes } from './routes/acl.js';
import { installAcl } from '../acl/request.js';
import { authorize } from '../acl/decide.js';

export interface HttpAppOptions {
  logger?: FastifyBaseLogger;
  /** Extra plugins mounted at the root (Consul and Eureka adapters, UI), each given the same deps. */
  plugins?: ((app: FastifyInstance, deps: ApiDeps) => Promise<void>)[];
  timeouts?: HttpTimeouts;
  /** Where a line goes for every write and every refusal (`--audit-log`). */
  audit?: AuditSink;
  /** Serve HTTPS only, with these PEM contents. */
  tls?: { cert: string | Buffer; key: string | Buffer; ca?: string | Buffer; verifyIncoming?: boolean };
}

/** Node's TLS server options for {@link HttpAppOptions.tls}: TLS 1.2 at least, client certificates only when asked. */
function httpsOptions(tls: NonNullable<HttpAppOptions['tls']>): SecureContextOptions & { requestCert: boolean; rejectUnauthorized: boolean } {
  return {
    cert: tls.cert,
    key: tls.key,
    ...(tls.ca !== undefined ? { ca: tls.ca } : {}),
    minVersion: 'TLSv1.2',
    requestCert: tls.verifyIncoming === true,
    rejectUnauthorized: tls.verifyIncoming === true,
  };
}

/** How long a connection may take to send its request, or sit idle between requests. */
export interface HttpTimeouts {
  /** Until the request's headers are in (slowloris). Default 10 s. */
  headersMs?: number;
  /** Until the whole request (headers and body) is in; answering, streaming included, is not covered. Default 30 s. */
  requestMs?: number;
  /** An idle keep-alive connection between requests. Default 65 s (above common load balancers' 60 s). */
  keepAliveMs?: number;
}

export const HTTP_TIMEOUT_DEFAULTS = { headersMs: 10_000, requestMs: 30_000, keepAliveMs: 65_000 } as const;

/**
 * `curl -X PUT …/pass` and clients that send an empty JSON body mean "no options", not a bad
 * request. Hooks take the callback form: an async hook costs a promise and a turn of the
 * microtask queue per request, which shows on heartbeats.
 */
const emptyBodyIsNoOptions: preValidationHookHandler = (req, _reply, done) => {
  if (req.body === undefined && req.method !== 'GET' && req.method !== 'HEAD') req.body = {};
  done();
};

/** Builds the HTTP front end: native API under /api/v1, OpenAPI, /metrics, and any extra plugins. */
export async function buildHttpApp(deps: ApiDeps, opts: HttpAppOptions = {}): Promise<FastifyInstance> {
  const t = { ...HTTP_TIMEOUT_DEFAULTS, ...opts.timeouts };
  const app = Fastify({
    ...(opts.tls ? { https: httpsOptions(opts.tls) } : {}),
    ...(opts.logger ? { loggerInstance: opts.logger } : { logger: false }),
    // Per-request log lines would dominate the cost of a heartbeat; latency goes to /metrics instead.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: LIMITS.bodyBytes,
    routerOptions: { maxParamLength: 512 },
    return503OnClosing: true,
    frameworkErrors,
    forceCloseConnections: true,
    // Node checks these two only every connectionsCheckingInterval (30 s by default): checking
    // at a quarter of the shorter one closes a slow sender close to its deadline.
    requestTimeout: t.requestMs,
    http: { headersTimeout: t.headersMs, connectionsCheckingInterval: Math.max(10, Math.min(t.headersMs, t.requestMs) / 4) },
    keepAliveTimeout: t.keepAliveMs,
    // No socket inactivity timeout: a parked blocking query is silent for up to its ?wait (10 min
    // at most) and must not be cut; idle connections between requests end by keepAliveTimeout.
    connectionTimeout: 0,
  }).withTypeProvider<TypeBoxTypeProvider>();
  installAudit(app, opts.audit);
  installAcl(app, deps.acl, deps.limits.chargeToken);
  // What only some routes need is attached to each route as it is added (after the ACL module's
  // own hook, so this one runs first): a route without hooks of a kind skips Fastify's hook
  // runner for it, so a read runs none of the write guards, and the latency hook knows its route
  // without `req.routeOptions` (which Fastify builds afresh on every access).
  app.addHook('onRoute', (route) => {
    if ([route.method].flat().some((m) => !SAFE_METHODS.has(m))) {
      // The address's bucket first (cheapest refusal of a flood), then the cross-site guard, then
      // the token (the ACL hook) and the token's bucket.
      route.onRequest = [deps.limits.chargeClient, crossSiteGuard, ...ownHooks(route, 'onRequest')];
      route.preValidation = [emptyBodyIsNoOptions, ...ownHooks(route, 'preValidation')];
    }
    route.onResponse = [deps.metrics.http.hook(route.url), ...ownHooks(route, 'onResponse')];
  });

  installErrorHandling(app, (req, reply) => deps.metrics.http.countUnmatched(req, reply));
  app.setValidatorCompiler(requestValidators());

  // `curl -X PUT …/pass` and clients that send an empty JSON body mean "no options", not a bad request.
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    const text = (body as string).trim();
    if (text === '') return done(null, undefined);
    try {
      done(null, JSON.parse(text));
    } catch {
      done(Object.assign(new Error('body is not valid JSON'), { statusCode: 400 }), undefined);
    }
  });
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'Beacon HTTP API',
        version: deps.info.version,
        description:
          'Service discovery: register, check, discover, watch (the native API under /api/v1). Errors are ' +
          '`{"error":{"code","message"}}` with one status per code. The same server also answers the Consul ' +
          '(/v1) and Eureka (/eureka) APIs; those follow the upstream projects\' own documents and are listed in ' +
          "Beacon's docs/compatibility.md, not here.",
      },
      servers: [{ url: 'http://127.0.0.1:8500', description: 'the default address of `beacon server`' }],
      tags: [
        { name: 'instances', description: 'Register, renew, deregister and inspect instances' },
        { name: 'checks', description: 'Report TTL check results' },
        { name: 'services', description: 'Discover services and their instances (blocking reads)' },
        { name: 'watch', description: 'Stream changes as Server-Sent Events' },
        { name: 'events', description: 'The history of changes with their reasons' },
        { name: 'status', description: 'Server, cluster and self-preservation state' },
        { name: 'snapshot', description: 'Back up and restore the catalog, KV, sessions and ACLs' },
        { name: 'acl', description: 'Tokens, policies and roles (servers started with --acl)' },
      ],
      components: {
        securitySchemes: {
          bearerToken: {
            type: 'http',
            scheme: 'bearer',
            description:
              'An ACL token\'s SecretID. A server started with --acl denies by default: a request without a token gets only what the anonymous token may do, and each operation needs the rule it names (docs/security.md). Without --acl no token is needed.',
          },
        },
      },
      // A token, or none: without --acl, or where the anonymous token has the rights, none is needed.
      security: [{ bearerToken: [] }, {}],
    },
    // The Consul and Eureka routes are their projects' APIs: a client is written against those
    // documents, and listing them here without their shapes would describe them wrongly.
    transform: ({ schema, url }) => ({ schema: url.startsWith('/api/v1/') ? schema : { ...schema, hide: true }, url }),
  });

  await app.register(
    async (api) => {
      // The native API takes JSON only: a text body would otherwise reach the schema as a string.
      api.removeContentTypeParser('text/plain');
      await api.register(instanceRoutes, deps);
      await api.register(serviceRoutes, deps);
      await api.register(watchRoutes, deps);
      await api.register(eventRoutes, deps);
      await api.register(statusRoutes, deps);
      await api.register(datacenterRoutes, deps);
      await api.register(async (s) => snapshotRoutes(s, deps));
      await api.register(memberRoutes, deps);
      await api.register(aclRoutes, deps);
      api.get('/openapi.json', { config: { acl: 'open' }, schema: { hide: true } }, async () => app.swagger());
    },
    { prefix: '/api/v1' },
  );

  // Metrics name services and show load: operator:read, as Consul's agent metrics need a token with read rights.
  app.get('/metrics', { config: { acl: 'route' }, schema: { hide: true } }, async (req, reply) => {
    authorize(req.authz, 'operator', 'read');
    reply.type(deps.metrics.registry.contentType);
    return deps.metrics.registry.metrics();
  });

  await app.register(healthRoutes, deps);

  for (const p of opts.plugins ?? []) await app.register(async (scope) => p(scope, deps));
  return app;
}
