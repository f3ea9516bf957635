import { errors } from '@beacon/core';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { followToken } from '../acl/revocation.js';
import type { AclResolver, Authorizer } from '../acl/types.js';
import { Cancel, type CancelSignal } from '../util/cancel.js';
import type { RequestLimits } from './limits/index.js';
import type { ServerMetrics, WatcherKind } from './metrics.js';

/** Resolves once the awaited index passed `minIndex`, after `ms`, or when `signal` aborts. */
export type IndexWait = (minIndex: number, ms: number, signal: CancelSignal) => Promise<unknown>;

export interface ParkDeps {
  limits: Pick<RequestLimits, 'open' | 'blocking'>;
  acl: AclResolver;
  metrics?: Pick<ServerMetrics, 'watcherOpened' | 'watcherClosed'>;
}

/**
 * Parks a blocking read (native or Consul) in a blocking-query slot until `wait` resolves, the
 * client hangs up, or the request's token changes: its rights are then taken anew (a deleted
 * token answers 403 at once, not at the end of the wait). Returns true when the token changed,
 * with `req.authz` already replaced. One `close` listener and one {@link Cancel} per request;
 * after a wake-up it waits for {@link afterWriters}.
 */
export async function parkRead(req: FastifyRequest, reply: FastifyReply, kind: WatcherKind, minIndex: number, ms: number, wait: IndexWait, d: ParkDeps): Promise<boolean> {
  const release = d.limits.open(d.limits.blocking, req, reply);
  const raw = reply.raw;
  const cancel = new Cancel();
  raw.once('close', cancel.abort);
  let changed: { rights: Authorizer | undefined } | undefined;
  const unfollow = followToken(d.acl, req, (rights) => {
    changed = { rights };
    cancel.abort();
  });
  d.metrics?.watcherOpened(kind);
  try {
    await wait(minIndex, ms, cancel);
  } finally {
    release();
    unfollow();
    d.metrics?.watcherClosed(kind);
    raw.removeListener('close', cancel.abort);
  }
  if (changed) {
    if (!changed.rights) throw errors.forbidden('ACL not found');
    req.authz = changed.rights;
    return true;
  }
  if (!cancel.aborted) await afterWriters();
  return false;
}

let turn: Promise<void> | undefined;

/**
 * Resolves after this event-loop turn. A change wakes its parked readers in the same turn as the
 * write that made it, whose answer goes out a few microtasks later: readers that wait for this
 * let it go first, so a writer's latency does not grow with the number of readers parked on what
 * it changed. One `setImmediate` serves every reader woken in a turn (it was one per reader).
 */
export function afterWriters(): Promise<void> {
  return (turn ??= new Promise((resolve) =>
    setImmediate(() => {
      turn = undefined;
      resolve();
    }),
  ));
}
