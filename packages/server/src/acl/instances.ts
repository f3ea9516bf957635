import { errors, type InstanceRecord } from '@beacon/core';
import { allowed, authorize } from './decide.js';
import type { Authorizer } from './types.js';

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
