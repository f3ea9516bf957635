import type { FastifyRequest } from 'fastify';
import type { AclResolver, Authorizer } from './types.js';
import { headerSecret, querySecret } from './secret.js';

/** The token headers a connection sent last and what they resolved to, while no ACL record has changed since. */
interface Memo {
  consul: unknown;
  authorization: string | undefined;
  authz: Authorizer;
  generation: number;
}

/**
 * Resolves requests' tokens, remembering per keep-alive connection what its token headers
 * resolved to: a client sends the same header on every request of a connection, and comparing it
 * with the last one spares hashing the secret for a map lookup on each request (about 700
 * instructions of a ~100,000-instruction query, callgrind). The header strings are compared, not
 * the secret sliced out of them, which V8 compares through the runtime. A secret given as
 * `?token=` is not remembered. Any ACL change makes every memo stale at once ({@link forget}).
 */
export class ConnectionAuthorizers {
  private readonly memos = new WeakMap<object, Memo>();
  private generation = 0;

  constructor(private readonly resolver: AclResolver) {}

  /** Forgets what every connection resolved to: a token, role or policy changed. */
  forget(): void {
    this.generation++;
  }

  /** The request's authorizer. @throws BeaconError `forbidden` ("ACL not found") for a secret that names no token. */
  resolve(req: FastifyRequest): Authorizer {
    const headers = req.headers;
    const consul = headers['x-consul-token'];
    const authorization = headers.authorization;
    // Node's request always has its socket; a request injected for a test may not.
    const connection = req.raw.socket as object | null | undefined;
    const memo = connection ? this.memos.get(connection) : undefined;
    if (memo !== undefined && memo.generation === this.generation && memo.consul === consul && memo.authorization === authorization) return memo.authz;
    const fromHeaders = headerSecret(headers);
    const authz = this.resolver.resolve(fromHeaders ?? querySecret(req.query));
    if (fromHeaders === undefined || !connection) return authz;
    if (memo === undefined) this.memos.set(connection, { consul, authorization, authz, generation: this.generation });
    else {
      memo.consul = consul;
      memo.authorization = authorization;
      memo.authz = authz;
      memo.generation = this.generation;
    }
    return authz;
  }
}
