import type { Clock } from '@beacon/core';
import type { FastifyReply } from 'fastify';
import type { Datacenter } from '../federation/federation.js';

/**
 * Marks an answer with the DC it came from and, when that DC's view may be behind (its stream is
 * down), how old it is: `X-Beacon-Stale-Age` in seconds, as HTTP's `Age`.
 */
export function markDatacenter(reply: FastifyReply, dc: Datacenter, clock: Clock): void {
  reply.header('X-Beacon-Datacenter', dc.name);
  const since = dc.catalog.staleSince;
  if (since !== undefined) reply.header('X-Beacon-Stale-Age', (Math.max(0, clock.now() - since) / 1000).toFixed(3));
}
