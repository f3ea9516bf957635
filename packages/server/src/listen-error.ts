import { BeaconError } from '@beacon/core';

/** The server's listening sockets, named so a front end can point at the setting that chose each. */
export type ListenerName = 'http' | 'dns' | 'xds';

export interface ListenFailure {
  listener: ListenerName;
  /** host:port as configured. */
  address: string;
  /** The system's code (EADDRINUSE, EACCES, EADDRNOTAVAIL, …), when it gave one. */
  reason?: string;
}

/** How messages name each listener. */
export const LISTENER_NAMES: Record<ListenerName, string> = { http: 'HTTP', dns: 'DNS', xds: 'xDS' };

/** Why a bind failed, in words a person can act on. */
function describe(reason: string | undefined): string {
  switch (reason) {
    case 'EADDRINUSE':
      return 'the address is already in use';
    case 'EACCES':
      return 'permission denied (ports below 1024 need privileges)';
    case 'EADDRNOTAVAIL':
      return 'no local interface has that address';
    default:
      return reason ?? 'the socket could not be opened';
  }
}

/** A failed bind as one typed error: which listener, which address, and why. */
export function listenFailed(listener: ListenerName, address: string, err: unknown): BeaconError {
  if (err instanceof BeaconError) return err;
  const reason = (err as NodeJS.ErrnoException | undefined)?.code;
  const details: ListenFailure = { listener, address, ...(reason ? { reason } : {}) };
  return new BeaconError('unavailable', `cannot listen for ${LISTENER_NAMES[listener]} on ${address}: ${describe(reason)}`, details);
}

export function isListenFailure(details: unknown): details is ListenFailure {
  const d = details as Partial<ListenFailure> | undefined;
  return typeof d === 'object' && d !== null && typeof d.listener === 'string' && Object.hasOwn(LISTENER_NAMES, d.listener) && typeof d.address === 'string';
}
