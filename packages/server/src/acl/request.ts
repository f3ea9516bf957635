import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ALLOW_ALL, type AclResolver, type Authorizer } from './types.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The caller's rights, resolved once per request by {@link installAcl}; {@link ALLOW_ALL} with ACLs off. */
    authz: Authorizer;
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

/** Resolves every request's token before any route runs, so each route only states what it needs. */
export function installAcl(app: FastifyInstance, resolver: AclResolver): void {
  // Fastify refuses an object as a decorator's default (it would be shared by every request): with
  // ACLs off a getter hands out the one frozen ALLOW_ALL, with them on the hook sets each request's own.
  if (!resolver.enabled) {
    app.decorateRequest('authz', { getter: () => ALLOW_ALL });
    return;
  }
  app.decorateRequest('authz', null as unknown as Authorizer);
  app.addHook('onRequest', (req, _reply, done) => {
    try {
      req.authz = resolver.resolve(presentedSecret(req));
      done();
    } catch (err) {
      done(err as Error);
    }
  });
}
