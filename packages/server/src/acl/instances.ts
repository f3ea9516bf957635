import { errors, type InstanceRecord } from '@beacon/core';
import { allowed, authorize } from './decide.js';
import { ALLOW_ALL, type Authorizer } from './types.js';
import type { CheckTargetScope, RegisterOptions } from '../registry/registry.js';

/**
 * What writing to an existing instance needs: `service:S write` on the service it is registered
 * under. Unknown instances pass (the write itself answers 404), so this never says more than that.
 */
export function authorizeInstanceWrite(authz: Authorizer, instance: { service: string } | undefined): void {
  if (instance) authorize(authz, 'service', instance.service, 'write');
}

/**
 * For `Registry.register`'s `mayReplace`: a registration for service B may not take over an
 * instance id registered for service A unless the token may write A too (409, the id is taken).
 */
export function takeoverGuard(authz: Authorizer, service: string): (prev: InstanceRecord) => void {
  return (prev) => {
    if (prev.service !== service && !allowed(authz, 'service', prev.service, 'write'))
      throw errors.conflict(`instance id ${JSON.stringify(prev.id)} is registered for service "${prev.service}"; choose another id`);
  };
}

/**
 * How far a caller's registration may aim active checks: past the instance's own address only
 * with operator:write, and only with ACLs on (with them off everyone holds every right, and the
 * rule stays `--check-allow`'s alone).
 */
export function checkTargetScope(authz: Authorizer): CheckTargetScope {
  return authz !== ALLOW_ALL && allowed(authz, 'operator', '', 'write') ? 'anywhere' : 'instance';
}

/** The options every API's registration passes to Registry.register for the caller's token. */
export function registrationGuards(authz: Authorizer, service: string): RegisterOptions {
  return { mayReplace: takeoverGuard(authz, service), checkTargets: checkTargetScope(authz) };
}
