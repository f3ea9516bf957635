/**
 * The ACL model shared by every interface. One decision ({@link authorize} in ./decide.ts) answers
 * "may this token do this to that?"; the front ends (native, Consul, Eureka, DNS, SSE, xDS, UI)
 * only say what a request needs and never read a rule themselves.
 */

/** What a request needs. `list` is Consul's: enumerate keys under a prefix; write implies list implies read. */
export type AclAccess = 'read' | 'list' | 'write';

/** What a rule grants. `deny` refuses everything, and wins a tie with any other rule of the same precision. */
export type AclPolicyLevel = AclAccess | 'deny';

/** Resources named by a string, each with an exact form (`service "web"`) and a prefix form (`service_prefix "we"`). */
export type AclNamedKind = 'service' | 'node' | 'key' | 'session' | 'event' | 'agent' | 'query';

/** Resources without a name: `operator = "write"`, `acl = "read"`. */
export type AclGlobalKind = 'operator' | 'acl';

export type AclResourceKind = AclNamedKind | AclGlobalKind;

export const ACL_NAMED_KINDS: readonly AclNamedKind[] = ['service', 'node', 'key', 'session', 'event', 'agent', 'query'];
export const ACL_GLOBAL_KINDS: readonly AclGlobalKind[] = ['operator', 'acl'];

/** One rule of a policy: `service_prefix "pay" { policy = "write" }` is `{ kind: 'service', prefix: true, name: 'pay', level: 'write' }`. */
export type AclRule =
  | { kind: AclNamedKind; prefix: boolean; name: string; level: AclPolicyLevel }
  | { kind: AclGlobalKind; level: AclPolicyLevel };

/**
 * A token's rights, resolved once per request from the in-memory ACL state (no store round trip).
 * With ACLs off every server hands out {@link ALLOW_ALL}.
 */
export interface Authorizer {
  /** The token's public id, for audit lines and limits (`anonymous` for the anonymous token); never the secret. */
  readonly accessorId: string;
  /** A management token (bootstrap, or the global-management policy) may do everything. */
  readonly management: boolean;
  /** The merged rules of the token's policies and roles' policies. */
  readonly rules: readonly AclRule[];
}

/** Where a request's authorizer comes from. Synchronous: the ACL state is kept in memory from the store's change feed. */
export interface AclResolver {
  /** ACLs on (`--acl`): default deny, tokens required. Off: every caller gets {@link ALLOW_ALL}. */
  readonly enabled: boolean;
  /**
   * The authorizer for a secret as presented (`X-Consul-Token`, `Authorization: Bearer`, `?token=`,
   * basic auth password, `--token`); no secret means the anonymous token.
   * @throws BeaconError `forbidden` ("ACL not found") for a secret that names no token.
   */
  resolve(secret: string | undefined): Authorizer;
  /** Called when a token is deleted or its rights change, so open streams and parked queries re-check or end. */
  onChange(listener: (accessorIds: ReadonlySet<string> | 'all') => void): () => void;
}

export const ALLOW_ALL: Authorizer = Object.freeze({ accessorId: 'acl-disabled', management: true, rules: [] });

/** The resolver of a server without `--acl`: everyone may do everything, and nothing ever changes. */
export const ACL_OFF: AclResolver = Object.freeze({
  enabled: false,
  resolve: () => ALLOW_ALL,
  onChange: () => () => {},
});
