import type { FastifyInstance, FastifyRequest } from 'fastify';
import { errors } from '@beacon/core';
import { ALLOW_ALL, type AclResolver, type Authorizer } from './types.js';

/**
 * How a route meets ACLs, in its `config.acl`: `open` answers everyone (liveness, readiness,
 * status); `route` calls {@link authorize} itself with what it needs. A route that says neither
 * is served to management tokens only, so a route added without thought is closed, not open.
 */
export type AclRouteMode = 'open' | 'route';

declare module 'fastify' {
  interface FastifyRequest {
    /** The caller's rights, resolved once per request by {@link installAcl}; {@link ALLOW_ALL} with ACLs off. */
    authz: Authorizer;
    /** Where {@link installAcl} keeps `authz`; read `authz`. */
    resolvedAuthz: Authorizer | null;
  }
  interface FastifyContextConfig {
    acl?: AclRouteMode;
  }
}

/**
 * The secret a request presents, in the places Consul's and Eureka's clients put it:
 * `X-Consul-Token`, `Authorization: Bearer …`, HTTP basic auth's password (Eureka clients), `?token=`.
 */
export function presentedSecret(req: Pick<FastifyRequest, 'headers' | 'query'>): string | undefined {
  const consul = req.headers['x-consul-token'];
  if (typeof consul === 'string' && consul !== '') return consul;
  const auth = req.headers.authorization;
  if (typeof auth === 'string') {
    const space = auth.indexOf(' ');
    const scheme = auth.slice(0, space).toLowerCase();
    const value = auth.slice(space + 1).trim();
    if (scheme === 'bearer' && value !== '') return value;
    if (scheme === 'basic') {
      const decoded = Buffer.from(value, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon >= 0 && colon < decoded.length - 1) return decoded.slice(colon + 1);
    }
  }
  const q = req.query as Record<string, unknown> | undefined;
  const token = q?.token;
  return typeof token === 'string' && token !== '' ? token : undefined;
}

const NOBODY: Authorizer = Object.freeze({ accessorId: 'unresolved', management: false, rules: [] });

/**
 * Resolves every request's token before any route runs, so each route only states what it needs;
 * routes that declare no {@link AclRouteMode} are refused to all but management tokens.
 */
export function installAcl(app: FastifyInstance, resolver: AclResolver): void {
  // A getter over a field every request is built with (a shared default object Fastify refuses, and
  // a property added later would change the request objects' shape on the hot path): with ACLs off
  // no hook runs and every request reads ALLOW_ALL; with them on, one the hook has not seen may do nothing.
  const fallback = resolver.enabled ? NOBODY : ALLOW_ALL;
  app.decorateRequest('resolvedAuthz', null);
  app.decorateRequest('authz', {
    getter(this: FastifyRequest) {
      return this.resolvedAuthz ?? fallback;
    },
    setter(this: FastifyRequest, value: Authorizer) {
      this.resolvedAuthz = value;
    },
  });
  if (!resolver.enabled) return;
  app.addHook('onRequest', (req, _reply, done) => {
    // No route matched: the not-found answer (404, Consul's 405) tells nothing a token could guard.
    const mode = req.routeOptions.config?.acl ?? (req.routeOptions.url === undefined ? 'route' : undefined);
    try {
      try {
        req.authz = resolver.resolve(presentedSecret(req));
      } catch (err) {
        // An open route answers even a request whose token is unknown or revoked, as anonymous.
        if (mode !== 'open') throw err;
        req.authz = resolver.resolve(undefined);
      }
      if (mode === undefined && !req.authz.management) throw errors.forbidden('Permission denied: this endpoint needs a management token');
      done();
    } catch (err) {
      done(err as Error);
    }
  });
}
