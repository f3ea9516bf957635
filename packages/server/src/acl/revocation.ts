import type { FastifyRequest } from 'fastify';
import { presentedSecret } from './secret.js';
import type { AclResolver, Authorizer } from './types.js';

/**
 * Follows the token of a long request (an SSE stream, a parked blocking query): `changed` is
 * called with the token's new rights when they change, or with undefined once it is deleted, so
 * the request can re-filter or end within the ACL feed's delay. A change that landed between the
 * request's start and this call is reported at once. Returns the unsubscribe.
 */
export function followToken(resolver: AclResolver, req: FastifyRequest, changed: (authz: Authorizer | undefined) => void): () => void {
  if (!resolver.enabled) return () => {};
  const secret = presentedSecret(req);
  const accessorId = req.authz.accessorId;
  const current = (): Authorizer | undefined => {
    try {
      return resolver.resolve(secret);
    } catch {
      return undefined;
    }
  };
  const off = resolver.onChange((ids) => {
    if (ids === 'all' || ids.has(accessorId)) changed(current());
  });
  // Authorizers are rebuilt (a new object) whenever a token's rights change.
  const now = current();
  if (now !== req.authz) changed(now);
  return off;
}
