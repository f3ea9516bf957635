import { isBrokenCircuitError } from 'cockatiel';
import { ClientClosedError, EtcdLeaseInvalidError, GRPCInvalidArgumentError, isRecoverableError } from 'etcd3';
import { BeaconError, errors, isBeaconError } from '@beacon/core';

/**
 * Whether a failed etcd call may succeed if tried again (on another member, after an election).
 * A write that failed this way is ambiguous: it may have been applied.
 */
export function isTransient(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (isBeaconError(err)) return err.code === 'unavailable';
  if (isBrokenCircuitError(err)) return true;
  // Deadline exceeded, unavailable (no leader, leader changed, request timed out), cancelled,
  // internal, aborted, resource exhausted: the etcd3 client marks them all recoverable.
  return isRecoverableError(err);
}

/** Translates an etcd3 error into the error catalog; `what` names the operation for the message. */
export function toBeaconError(err: unknown, what: string): BeaconError {
  if (isBeaconError(err)) return err;
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof EtcdLeaseInvalidError || message.includes('requested lease not found')) {
    return errors.notFound(`${what}: the lease does not exist or has expired`);
  }
  if (message.includes('required revision has been compacted')) return errors.compacted(`${what}: the revision has been compacted in etcd`);
  if (message.includes('request is too large')) return errors.tooLarge(`${what}: etcd refused a request this large`);
  if (err instanceof GRPCInvalidArgumentError || message.includes('duplicate key')) return errors.invalid(`${what}: ${stripPrefix(message)}`);
  if (err instanceof ClientClosedError) return errors.unavailable('the store is closed');
  if (isTransient(err)) return errors.unavailable(`etcd is unavailable (${what}): ${stripPrefix(message)}`);
  return errors.unavailable(`etcd failed (${what}): ${stripPrefix(message)}`);
}

function stripPrefix(message: string): string {
  return message.replace(/^\w+Error:\s*/, '').replace(/^\d+ [A-Z_]+:\s*/, '');
}
