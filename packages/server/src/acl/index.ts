export * from './types.js';
export { allowed, authorize, filterReadable, levelFor } from './decide.js';
export { installAcl, type AclRouteMode } from './request.js';
export { presentedSecret } from './secret.js';
export { parseRules, RULES_MAX_BYTES } from './rules.js';
export { AclState, type Indexed } from './state.js';
export { AclAdmin, type LinkRef, type Link, type PolicyInput, type PolicyView, type RoleInput, type RoleView, type TokenInput, type TokenView } from './admin.js';
export { ANONYMOUS_ACCESSOR_ID, ANONYMOUS_SECRET, GLOBAL_MANAGEMENT_ID } from './builtins.js';
