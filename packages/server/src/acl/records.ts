import { createHash } from 'node:crypto';
import { KEYS } from '../keys.js';
import type { KeyValue } from '../store/types.js';
import { parseJson } from '../util/json.js';
import type { AclRule } from './types.js';

/**
 * The ACL state as stored, one key per record under {@link KEYS.acl}. Tokens and roles link
 * policies (and tokens roles) by id, as Consul does: a name given at creation is looked up once,
 * so renaming a policy keeps every link, and a deleted policy's links are simply ignored.
 */
export interface TokenRecord {
  accessorId: string;
  /** sha256 of the SecretID, hex. Never the secret itself (see {@link hashSecret}). */
  secretHash: string;
  description: string;
  policies: string[];
  roles: string[];
  /** Consul's datacenter-local flag, kept for compatibility; Beacon has one datacenter. */
  local: boolean;
  /** RFC 3339. */
  createTime: string;
}

export interface PolicyRecord {
  id: string;
  name: string;
  description: string;
  /** As written (HCL or JSON), shown back to readers. */
  rules: string;
  /** `rules` parsed when written, so no server parses them again on the request path. */
  parsed: AclRule[];
  datacenters: string[];
}

export interface RoleRecord {
  id: string;
  name: string;
  description: string;
  policies: string[];
}

export type AclRecord = { type: 'token'; token: TokenRecord } | { type: 'policy'; policy: PolicyRecord } | { type: 'role'; role: RoleRecord } | { type: 'marker' };

/** Where each kind of record lives below {@link KEYS.acl} (the in-memory copy is keyed the same way). */
export const ACL_DIRS = { token: 'tokens/', policy: 'policies/', role: 'roles/' } as const;

/** Keys below {@link KEYS.acl}. The name indexes exist so a compare-and-set can keep names (and secrets) unique across servers. */
export const ACL_KEYS = {
  token: (accessorId: string) => `${KEYS.acl}${ACL_DIRS.token}${accessorId}`,
  policy: (id: string) => `${KEYS.acl}${ACL_DIRS.policy}${id}`,
  role: (id: string) => `${KEYS.acl}${ACL_DIRS.role}${id}`,
  policyName: (name: string) => `${KEYS.acl}policy-names/${name}`,
  roleName: (name: string) => `${KEYS.acl}role-names/${name}`,
  secret: (hash: string) => `${KEYS.acl}secrets/${hash}`,
  /** Present once bootstrap has happened; the bootstrap transaction creates it only if absent. */
  bootstrap: `${KEYS.acl}bootstrap`,
} as const;

/**
 * sha256, unsalted. Secrets are random UUIDs (122 random bits) or values an operator chose; a
 * slow, salted hash guards low-entropy passwords against guessing, which a 122-bit secret does not
 * need, and a fast hash lets every request be resolved with one map lookup.
 */
export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

/** A stored ACL key as a record; index keys and unreadable values are markers, which no reader uses. */
export function parseAclRecord(kv: KeyValue): AclRecord {
  const name = kv.key.slice(KEYS.acl.length);
  const dir = name.slice(0, name.indexOf('/') + 1);
  switch (dir) {
    case ACL_DIRS.token: {
      const token = parseJson<TokenRecord>(kv.value);
      return token && typeof token.secretHash === 'string' ? { type: 'token', token } : { type: 'marker' };
    }
    case ACL_DIRS.policy: {
      const policy = parseJson<PolicyRecord>(kv.value);
      return policy && Array.isArray(policy.parsed) ? { type: 'policy', policy } : { type: 'marker' };
    }
    case ACL_DIRS.role: {
      const role = parseJson<RoleRecord>(kv.value);
      return role && Array.isArray(role.policies) ? { type: 'role', role } : { type: 'marker' };
    }
    default:
      return { type: 'marker' };
  }
}
