import { ownHooks } from '../http/route-hooks.js';
import type { FastifyInstance, FastifyRequest, onRequestHookHandler } from 'fastify';
import { errors } from '@beacon/core';
import { ALLOW_ALL, type AclAccess, type AclNamedKind, type AclResolver, type Authorizer } from './types.js';
import { authorize } from './decide.js';
import { noteTarget } from '../audit/http.js';
import { ConnectionAuthorizers } from './connections.js';

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
  }
  interface FastifyContextConfig {
    acl?: AclRouteMode;
  }
}

const NOBODY: Authorizer = Object.freeze({ accessorId: 'unresolved', management: false, rules: [] });

/**
 * Resolves every request's token before any route runs, so each route only states what it needs;
 * routes that declare no {@link AclRouteMode} are refused to all but management tokens.
 */
export function installAcl(app: FastifyInstance, resolver: AclResolver, afterResolve?: onRequestHookHandler): void {
  // Fastify refuses a shared object as a decorator's default. With ACLs off no hook runs and a
  // getter hands every request ALLOW_ALL.
  if (!resolver.enabled) {
    app.decorateRequest('authz', { getter: () => ALLOW_ALL });
    return;
  }
  // With them on, a plain field (part of every request's shape from the start, so setting it never
  // changes a request's hidden class on the hot path); a request the resolver refuses gets NOBODY,
  // so it may still do nothing.
  app.decorateRequest('authz', null as never);
  const connections = new ConnectionAuthorizers(resolver);
  const unfollow = resolver.onChange(() => connections.forget());
  app.addHook('onClose', (_app, done) => {
    unfollow();
    done();
  });
  // One hook per route, made when the route is added, so each knows its mode without reading
  // `req.routeOptions` (which Fastify builds afresh on every access). It runs first among the
  // route's own hooks, after the app-wide ones (the per-address buckets).
  app.addHook('onRoute', (route) => {
    const mode = route.config?.acl;
    const resolveHook: onRequestHookHandler = function (req, reply, done) {
      let authz = NOBODY;
      try {
        try {
          authz = connections.resolve(req);
        } catch (err) {
          // An open route answers even a request whose token is unknown or revoked, as anonymous.
          if (mode !== 'open') throw err;
          authz = resolver.resolve(undefined);
        }
        if (mode === undefined && !authz.management) throw errors.forbidden('Permission denied: this endpoint needs a management token');
      } catch (err) {
        req.authz = authz;
        return done(err as Error);
      }
      req.authz = authz;
      if (afterResolve) return afterResolve.call(this, req, reply, done);
      done();
    };
    route.onRequest = [resolveHook, ...ownHooks(route, 'onRequest')];
  });
}

/** Route options of a route that asks {@link authorize} itself (routes that do not say so are management-only). */
export const ROUTE = { config: { acl: 'route' } } as const satisfies { config: { acl: AclRouteMode } };
/** Route options of a route anyone may call, even with an unknown token (liveness, Consul's /v1/status/*). */
export const OPEN = { config: { acl: 'open' } } as const satisfies { config: { acl: AclRouteMode } };

/**
 * What a route calls to say what it needs: the one decision ({@link authorize}) on the request's
 * token, after noting the resource for the request's audit line (a name from the body, such as a
 * registration's service, would otherwise be missing from it).
 * @throws BeaconError `forbidden` naming what was needed.
 */
export function need(req: FastifyRequest, kind: AclNamedKind, name: string, access: AclAccess): void {
  noteTarget(req, kind, name);
  authorize(req.authz, kind, name, access);
}
