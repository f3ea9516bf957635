import { errors, isServiceName, type Instance } from '@beacon/core';

/**
 * Consul names services freely; Beacon's are DNS labels. The mapping is lower-case with `_` and
 * `.` turned into `-`, applied the same way on writes and reads, so `My_Service` registered
 * through Consul is found as `my_service`, `My_Service` or `my-service`, and shown as `my-service`.
 */
export function mapServiceName(name: string): string {
  return name.toLowerCase().replace(/[_.]/g, '-');
}

/** For writes: the mapped name, or a clear error. */
export function serviceNameForWrite(name: unknown): string {
  if (typeof name !== 'string' || name === '') throw errors.invalid('Missing service name');
  const mapped = mapServiceName(name);
  if (!isServiceName(mapped))
    throw errors.invalid(`Invalid service name ${JSON.stringify(name.slice(0, 80))}: Beacon service names are DNS labels (letters, digits and '-', at most 63 characters)`);
  return mapped;
}

/** For reads: the mapped name, or undefined when no service could have that name. */
export function serviceNameForRead(name: string): string | undefined {
  const mapped = mapServiceName(name);
  return isServiceName(mapped) ? mapped : undefined;
}

/**
 * Consul's default check id is the check's name, which often holds spaces or `/`. Beacon once refused
 * those in check ids and mapped them to `_` on writes and lookups alike; the mapping stays so check
 * ids stored that way keep matching what clients send.
 */
export function mapCheckId(id: string): string {
  return id.replace(/[\s/]/g, '_');
}

/**
 * Service ids are per node in Consul and global in Beacon. A service registered through
 * /v1/catalog/register on another node under an id already taken gets `<id>@<node>`; Consul
 * clients keep seeing `<id>`.
 */
export function consulServiceId(inst: Pick<Instance, 'id' | 'node'>): string {
  const suffix = `@${inst.node}`;
  return inst.id.endsWith(suffix) && inst.id.length > suffix.length ? inst.id.slice(0, -suffix.length) : inst.id;
}
