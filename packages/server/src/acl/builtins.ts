import { hashSecret, type PolicyRecord, type TokenRecord } from './records.js';
import { parseRules } from './rules.js';

/** Consul's built-in ids: tools that know them (and operators' scripts) work unchanged. */
export const GLOBAL_MANAGEMENT_ID = '00000000-0000-0000-0000-000000000001';
export const ANONYMOUS_ACCESSOR_ID = '00000000-0000-0000-0000-000000000002';
/** The anonymous token's SecretID, public by design: presenting it is the same as presenting none. */
export const ANONYMOUS_SECRET = 'anonymous';

const GLOBAL_MANAGEMENT_RULES = `acl = "write"
agent_prefix "" { policy = "write" }
event_prefix "" { policy = "write" }
key_prefix "" { policy = "write" }
node_prefix "" { policy = "write" }
operator = "write"
query_prefix "" { policy = "write" }
service_prefix "" { policy = "write" }
session_prefix "" { policy = "write" }
`;

/** A token linking this policy (directly or through a role) is a management token: it may do anything. */
export function globalManagementPolicy(): PolicyRecord {
  return {
    id: GLOBAL_MANAGEMENT_ID,
    name: 'global-management',
    description: 'Builtin Policy that grants unlimited access',
    rules: GLOBAL_MANAGEMENT_RULES,
    parsed: parseRules(GLOBAL_MANAGEMENT_RULES),
    datacenters: [],
  };
}

/** What a request without a token gets: nothing, until an operator links policies to it (DNS, public reads). */
export function anonymousToken(createTime: string): TokenRecord {
  return {
    accessorId: ANONYMOUS_ACCESSOR_ID,
    secretHash: hashSecret(ANONYMOUS_SECRET),
    description: 'Anonymous Token',
    policies: [],
    roles: [],
    local: false,
    createTime,
  };
}
