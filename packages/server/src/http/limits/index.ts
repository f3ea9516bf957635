import { errors, LIMITS, type Clock } from '@beacon/core';
import type { FastifyInstance, FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify';
import { tcpClientKey } from '../../dns/tcp.js';
import { KeyedBuckets } from './bucket.js';
import { ASSUMED_NOFILE, clampToNofile, softNofile } from './fd.js';
import { Slots } from './slots.js';
import { ALLOW_ALL } from '../../acl/types.js';
import { ANONYMOUS_ACCESSOR_ID } from '../../acl/builtins.js';

export { TokenBucket, KeyedBuckets } from './bucket.js';
export { Slots, type SlotKind } from './slots.js';
export { clampToNofile, softNofile, FD_HEADROOM, ASSUMED_NOFILE } from './fd.js';

/** Per-client request limits; a rate of 0 or a per-client cap of 0 turns that limit off. */
export interface RequestLimitsConfig {
  /** Writes (PUT, POST, PATCH, DELETE on every API) per second from one client. Default 1000. */
  writeRate?: number;
  /** Writes one client may send at once before the rate applies. Default 2000. */
  writeBurst?: number;
  /** Watches opened (SSE streams, parked blocking queries) per second from one client. Default 100. */
  watchRate?: number;
  watchBurst?: number;
  /** Writes per second charged to one ACL token, whichever address sends them (ACLs on only). Default 2000. */
  tokenWriteRate?: number;
  tokenWriteBurst?: number;
  /** Watches opened per second with one ACL token (ACLs on only). Default 200. */
  tokenWatchRate?: number;
  tokenWatchBurst?: number;
  /** Open SSE streams from one client. Default 64. */
  watchesPerClient?: number;
  /** Parked blocking queries (native and Consul) from one client. Default 64. */
  blockingPerClient?: number;
  /** Open SSE streams in all, before the descriptor clamp. Default LIMITS.watchStreams. */
  maxWatchStreams?: number;
  /** Parked blocking queries in all, before the descriptor clamp. Default LIMITS.blockingQueries. */
  maxBlockingQueries?: number;
  /** The soft descriptor limit; read from /proc/self/limits when not given. */
  nofile?: number;
}

export const LIMIT_DEFAULTS = {
  writeRate: 1000,
  writeBurst: 2000,
  watchRate: 100,
  watchBurst: 200,
  watchesPerClient: 64,
  blockingPerClient: 64,
  // A token is often shared by every instance of a service (hundreds heartbeating at once), so its
  // buckets are wider than one address's; they stop one stolen token from flooding from many addresses.
  tokenWriteRate: 2000,
  tokenWriteBurst: 4000,
  tokenWatchRate: 200,
  tokenWatchBurst: 400,
} as const;

/** What counts as a write for the write limits and the audit log. */
export const WRITE_METHODS: ReadonlySet<string> = new Set(['PUT', 'POST', 'PATCH', 'DELETE']);
/** A slot frees when some stream ends, which nobody can predict; a few seconds spreads the retries. */
const SLOT_RETRY_S = 5;

/** The one place per-client limits are kept, for the native, Consul and Eureka APIs alike. */
export class RequestLimits {
  readonly sse: Slots;
  readonly blocking: Slots;
  private readonly writes: KeyedBuckets;
  private readonly watches: KeyedBuckets;
  private readonly tokenWrites: KeyedBuckets;
  private readonly tokenWatches: KeyedBuckets;
  /** What the caps came to after the descriptor clamp, for the start-up log line. */
  readonly effective: { nofile: number; nofileKnown: boolean; watchStreams: number; blockingQueries: number };

  constructor(
    private readonly clock: Clock,
    config: RequestLimitsConfig = {},
  ) {
    const c = { ...LIMIT_DEFAULTS, ...config };
    this.writes = new KeyedBuckets(c.writeRate, c.writeBurst);
    this.watches = new KeyedBuckets(c.watchRate, c.watchBurst);
    this.tokenWrites = new KeyedBuckets(c.tokenWriteRate, c.tokenWriteBurst);
    this.tokenWatches = new KeyedBuckets(c.tokenWatchRate, c.tokenWatchBurst);
    const read = config.nofile ?? softNofile();
    const nofile = read ?? ASSUMED_NOFILE;
    const caps = clampToNofile({ watchStreams: config.maxWatchStreams ?? LIMITS.watchStreams, blockingQueries: config.maxBlockingQueries ?? LIMITS.blockingQueries }, nofile);
    this.effective = { nofile, nofileKnown: read !== undefined, ...caps };
    this.sse = new Slots('watch streams', caps.watchStreams, c.watchesPerClient);
    this.blocking = new Slots('blocking queries', caps.blockingQueries, c.blockingPerClient);
  }

  /**
   * Charges a write to its client's bucket before anything else runs: the first `onRequest` hook of
   * every route that takes writes, on all three APIs (see `buildHttpApp`).
   */
  readonly chargeClient: onRequestHookHandler = (req, reply, done) => {
    if (!WRITE_METHODS.has(req.method)) return done();
    const wait = this.writes.take(clientOf(req), this.clock.now());
    if (wait === 0) return done();
    done(tooFast(reply, wait, 'writes'));
  };

  /** Charges a write to its token's bucket too: for installAcl to run once the token is resolved. */
  readonly chargeToken: onRequestHookHandler = (req, reply, done) => {
    const token = WRITE_METHODS.has(req.method) ? tokenOf(req) : undefined;
    if (token === undefined) return done();
    const wait = this.tokenWrites.take(token, this.clock.now());
    if (wait === 0) return done();
    done(tooFast(reply, wait, 'writes', 'token'));
  };

  /** Opens a watch for the request's client: its rate, then a slot; the returned function closes it. */
  open(slots: Slots, req: FastifyRequest, reply: FastifyReply): () => void {
    const client = clientOf(req);
    const now = this.clock.now();
    const wait = this.watches.take(client, now);
    if (wait > 0) throw tooFast(reply, wait, slots.kind);
    const token = tokenOf(req);
    const tokenWait = token === undefined ? 0 : this.tokenWatches.take(token, now);
    if (tokenWait > 0) throw tooFast(reply, tokenWait, slots.kind, 'token');
    try {
      return slots.acquire(client);
    } catch (err) {
      reply.header('retry-after', String(SLOT_RETRY_S));
      throw err;
    }
  }
}

/** An IPv4 address or an IPv6 /64, as the DNS TCP limits count clients. */
export function clientOf(req: FastifyRequest): string {
  return tcpClientKey(req.ip);
}

/**
 * The ACL token a request is charged to: none with ACLs off, and none for the anonymous token,
 * which every caller without a token shares (one flood of them would starve all the others; the
 * per-address buckets cover them).
 */
export function tokenOf(req: FastifyRequest): string | undefined {
  const authz = req.authz;
  return authz === ALLOW_ALL || authz.accessorId === ANONYMOUS_ACCESSOR_ID ? undefined : authz.accessorId;
}

function tooFast(reply: FastifyReply, waitMs: number, what: string, by: 'client' | 'token' = 'client'): Error {
  const s = Math.max(1, Math.ceil(waitMs / 1000));
  reply.header('retry-after', String(s));
  return errors.tooMany(`too many ${what} ${by === 'client' ? 'from this client' : 'with this token'}; retry in ${s} s`);
}
