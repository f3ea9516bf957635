import { errors } from '@beacon/core';
import { formatHostPort } from './addr.js';
import { inSpecialRange, parseIp } from './health/addr.js';
import { LISTENER_NAMES, type ListenerName } from './listen-error.js';

/**
 * Without ACLs whoever reaches a listener can deregister, redirect or read anything. So a listener
 * other hosts can reach is refused unless ACLs are on (`--acl`: default deny, tokens required) or
 * the operator says so (`--insecure-open`), and then it is reported wherever the server describes itself.
 */

/** Whether a listening host is reachable only from this machine. Other names may resolve anywhere. */
export function isLoopbackHost(host: string): boolean {
  if (host.toLowerCase() === 'localhost') return true;
  // The check-target policy's parser: an IPv4-mapped address is its IPv4 host, so
  // ::ffff:127.0.0.1 counts as loopback as it binds the IPv4 loopback interface.
  const ip = parseIp(host);
  return ip !== undefined && inSpecialRange(ip, 'loopback');
}

/** A listener bound where other hosts can reach it. */
export interface OpenListener {
  listener: ListenerName;
  /** host:port as configured. */
  address: string;
}

/** The listeners among these whose host is not loopback (0.0.0.0 and :: are every interface). */
export function openListeners(listeners: readonly { listener: ListenerName; host: string; port: number }[]): OpenListener[] {
  return listeners.filter((l) => !isLoopbackHost(l.host)).map((l) => ({ listener: l.listener, address: formatHostPort(l.host, l.port) }));
}

/** Of the open listeners, those nothing guards: all of them without ACLs; none with them (HTTP, DNS and xDS all go through the ACL decision). */
export function unguardedListeners(open: readonly OpenListener[], acl: boolean): OpenListener[] {
  return acl ? [] : [...open];
}

/** Why `open` is refused without `--insecure-open`: one line naming the addresses and the flags. */
export function openRefusal(open: readonly OpenListener[]): string {
  const list = open.map((o) => `${LISTENER_NAMES[o.listener]} on ${o.address}`).join(' and ');
  return `refusing to listen for ${list}: not a loopback address and access control is off, so anyone who reaches it can change the catalog; pass --acl to require tokens, or --insecure-open to serve it anyway`;
}

/** The warnings a server listening on `open` with `--insecure-open` reports (log, status). */
export function openWarnings(open: readonly OpenListener[]): string[] {
  return open.map((o) => `${LISTENER_NAMES[o.listener]} listens on ${o.address} without access control (--insecure-open): anyone who reaches it can read and change everything`);
}

/** Refuses open listeners nothing guards unless `insecureOpen`; returns the warnings to report. */
export function checkExposure(open: readonly OpenListener[], insecureOpen: boolean, acl = false): string[] {
  const unguarded = unguardedListeners(open, acl);
  if (unguarded.length > 0 && !insecureOpen) throw errors.invalid(openRefusal(unguarded), { open: unguarded });
  return openWarnings(unguarded);
}
