import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Instance } from '@beacon/core';
import { allowed, filterReadable } from '../../acl/decide.js';
import type { AclAccess, AclNamedKind, Authorizer } from '../../acl/types.js';
import type { KvVerb } from '../../kv/txn.js';
import { need } from '../../acl/request.js';
export { need, ROUTE, OPEN } from '../../acl/request.js';

/**
 * How the Consul routes ask the one ACL decision (acl/decide.ts): a route states what it needs;
 * lists are filtered to what the token may read and say so with Consul's header.
 */

/** Consul's header on an answer that lost entries to the token's rights. */
export const FILTERED_HEADER = 'X-Consul-Results-Filtered-By-ACLs';

/** Marks the answer as filtered (Consul sets the header only when something was dropped). */
export function markFiltered(reply: FastifyReply): void {
  reply.header(FILTERED_HEADER, 'true');
}

/** The entries the request's token may read, marking the answer when any were dropped. */
export function readable<T>(req: FastifyRequest, reply: FastifyReply, kind: AclNamedKind, items: readonly T[], nameOf: (t: T) => string): T[] {
  const r = filterReadable(req.authz, kind, items, nameOf);
  if (r.filtered) markFiltered(reply);
  return r.items;
}

/** Whether the token may read one named resource; when it may not, the answer is marked filtered (Consul answers as if empty). */
export function mayRead(req: FastifyRequest, reply: FastifyReply, kind: AclNamedKind, name: string): boolean {
  if (allowed(req.authz, kind, name, 'read')) return true;
  markFiltered(reply);
  return false;
}


/** Writing to an instance (deregister, maintenance, check results) needs write on its service. */
export function needServiceWrite(req: FastifyRequest, inst: Pick<Instance, 'service'>): void {
  need(req, 'service', inst.service, 'write');
}

/** What a /v1/txn KV verb needs on its key: reads and checks read, a tree read lists, everything else writes. */
export function kvVerbAccess(verb: KvVerb): AclAccess {
  switch (verb) {
    case 'get':
    case 'check-index':
    case 'check-session':
    case 'check-not-exists':
      return 'read';
    case 'get-tree':
      return 'list';
    case 'set':
    case 'cas':
    case 'lock':
    case 'unlock':
    case 'delete':
    case 'delete-tree':
    case 'delete-cas':
      return 'write';
  }
}

/**
 * Deleting a tree needs write on the prefix and on every key under it, so a `deny` or `read`
 * rule deeper in the tree is never bypassed by deleting a parent (Consul's KeyWritePrefix).
 */
export function mayWriteTree(authz: Authorizer, prefix: string, keys: Iterable<string>): boolean {
  if (!allowed(authz, 'key', prefix, 'write')) return false;
  for (const k of keys) if (!allowed(authz, 'key', k, 'write')) return false;
  return true;
}
