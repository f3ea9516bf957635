import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { isBeaconError, isServiceName, errors, type ChangeEvent, type Instance, type Timer } from '@beacon/core';
import type { CatalogChange, CatalogReader, WatchChange } from '../../catalog/types.js';
import { answerWithFailover, parseFailover, type FailoverPolicy } from '../../federation/failover.js';
import type { ApiDeps } from '../deps.js';
import { allowed, authorize } from '../../acl/decide.js';
import { followToken } from '../../acl/revocation.js';
import { list } from '../query.js';
import { PING, SseFrame, SseStream } from '../sse-frame.js';
import { SseFanout, type SseGroup } from '../sse-fanout.js';
import { nativeBulkSender } from '../sse-bulk-send.js';
import type { Authorizer } from '../../acl/types.js';
import { DcQuery, readErrors } from '../schemas.js';

type Deps = Pick<ApiDeps, 'catalog' | 'clock' | 'metrics' | 'limits' | 'federation' | 'acl'>;

export type { WatchChange };

/** A `reset` event: the full current state of the watched services; replaces whatever the client held. */
export interface WatchReset {
  index: number;
  instances: Instance[];
  /** The datacenter the instances are from (this server's own, another with `dc`, or failover's pick). */
  datacenter: string;
}

const PING_MS = 15_000;
const RETRY = new SseFrame('retry: 1000\n\n');
const INDEX_EVERY_MS = 1_000;
/** The key of the group of unfiltered streams whose token may read everything. */
const EVERYTHING = Symbol('everything');

/**
 * Server-Sent Events stream of changes. Every revision's events are written together and only the
 * last carries `id:`, so a client that resumes from its Last-Event-ID never misses half a revision.
 * With ACLs on, a stream carries only services its token may read; when the token's rights change
 * it gets a fresh `reset`, and when the token is deleted the stream ends.
 */
export const watchRoutes: FastifyPluginAsyncTypebox<Deps> = async (app, { clock, metrics, limits, federation, acl }) => {
  // A change's frames are encoded once (as HTTP chunks), however many streams carry them, and
  // every stream is written the same Buffer: a thousand watchers of one service used to
  // serialise the same instance a thousand times, and then to encode the same text a thousand
  // times. A frame carries `id:` or not (the last of its revision among what a stream carries):
  // two frames per event at most. (Keyed by the change object, which belongs to one datacenter's
  // catalog.)
  const liveFrames = new WeakMap<CatalogChange, (SseFrame | undefined)[]>();
  const changeFrame = (catalog: CatalogReader, c: CatalogChange, k: number, id: number | undefined): SseFrame => {
    let cached = liveFrames.get(c);
    if (!cached) liveFrames.set(c, (cached = []));
    const slot = 2 * k + (id === undefined ? 0 : 1);
    let buf = cached[slot];
    if (buf === undefined) {
      const event = c.events[k]!;
      const instance = event.kind === 'deregistered' ? undefined : catalog.instance(event.instanceId);
      buf = cached[slot] = new SseFrame(rawFrame('change', JSON.stringify(watchChange(event, instance)), id));
    }
    return buf;
  };

  const fanout = new SseFanout(nativeBulkSender());

  /**
   * The feed of the streams of one catalog that carry the same events: those that name the same
   * services, or those that name none and hold the same rights (authorizers are rebuilt, a new
   * object, when a token's rights change, so equal rights are one object). One catalog listener
   * per feed; it ends with its last stream. Callers join a stream at once (an empty feed is only
   * released when a member leaves).
   */
  const feeds = new Map<CatalogReader, Map<string | symbol | Authorizer, SseGroup>>();
  const feedFor = (dc: Datacenter, services: ReadonlySet<string> | undefined, authz: Authorizer): SseGroup => {
    const catalog = dc.catalog;
    const key = services ? [...services].sort().join(',') : authz.management ? EVERYTHING : authz;
    let byKey = feeds.get(catalog);
    if (!byKey) feeds.set(catalog, (byKey = new Map()));
    const existing = byKey.get(key);
    if (existing) return existing;

    const carries = carriesFor(services, authz);
    // Runs as the catalog applies the change, so the frames hold the state at that revision.
    // Writes that change nothing the feed carries (KV, other services) still move the index: an
    // `index` event, at most once a second, moves the clients' resume point along, so a reconnect
    // after a restart finds its Last-Event-ID inside history instead of below it. (A stream that
    // joined after the last one may get an index it already holds: harmless.)
    let sentIndex = catalog.index;
    let indexTimer: Timer | undefined;
    const sendIndex = () => {
      indexTimer = undefined;
      if (catalog.index <= sentIndex) return;
      sentIndex = catalog.index;
      group.push(frame('index', { index: sentIndex }, sentIndex));
    };
    const off = catalog.onChange((c) => {
      if (c.reset) {
        sentIndex = catalog.index;
        return void group.push(snapshotFrame(dc, services, carries));
      }
      let lastK = -1;
      c.events.forEach((e, k) => {
        if (!carries(e.service)) return;
        if (lastK >= 0) group.push(changeFrame(catalog, c, lastK, c.events[lastK]!.index !== e.index ? c.events[lastK]!.index : undefined));
        lastK = k;
      });
      if (lastK < 0) {
        indexTimer ??= clock.setTimeout(sendIndex, INDEX_EVERY_MS);
        return;
      }
      group.push(changeFrame(catalog, c, lastK, c.events[lastK]!.index));
      sentIndex = c.events[lastK]!.index;
    });
    const group = fanout.group(() => {
      off();
      indexTimer?.cancel();
      byKey.delete(key);
      if (byKey.size === 0) feeds.delete(catalog);
    });
    byKey.set(key, group);
    return group;
  };

  app.get(
    '/watch',
    {
      config: { acl: 'route' },
      schema: {
        operationId: 'watchChanges',
        tags: ['watch'],
        summary: 'Stream changes (Server-Sent Events)',
        description:
          'Events: `change` (data: {index, type: upsert|delete, service, id, event, instance}), `reset` (data: {index, instances}) ' +
          'and `index` (data: {index}: writes that changed nothing watched moved the resume point, at most once a second) ' +
          'sent first when no `since` is given, or when `since` is older than history. Resume with `Last-Event-ID` or `since`. ' +
          '`dc` streams another datacenter (from its followed view). `failover` (one `service` only) streams only `reset` events, ' +
          'each with the `datacenter` its instances came from, whenever the failover answer changes.',
        querystring: Type.Object({
          service: Type.Optional(Type.Array(Type.String({ maxLength: 63 }), { maxItems: 256 })),
          since: Type.Optional(Type.Integer({ minimum: 0 })),
          ...DcQuery,
          failover: Type.Optional(Type.String({ maxLength: 512, description: 'nearest:N and/or datacenter names, comma-separated' })),
        }),
        headers: Type.Object({ 'last-event-id': Type.Optional(Type.String({ description: 'resume after this event id (an index); wins over `since`' })) }),
        response: {
          200: {
            description: 'An event stream that stays open; `: ping` comments keep idle connections alive',
            content: { 'text/event-stream': { schema: Type.String() } },
          },
          ...readErrors('not_found', 'unavailable', 'too_many_requests'),
        },
      },
    },
    async (req, reply) => {
      const names = list(req.query.service);
      for (const n of names) if (!isServiceName(n)) throw errors.invalid(`invalid service name ${JSON.stringify(n)}`);
      const services = names.length ? new Set(names) : undefined;
      for (const n of names) authorize(req.authz, 'service', n, 'read');
      const dc = federation.datacenter(req.query.dc);
      const catalog = dc.catalog;
      let policy: FailoverPolicy | undefined;
      if (req.query.failover !== undefined) {
        if (!dc.local) throw errors.invalid('failover starts from this server\'s own datacenter: give dc or failover, not both');
        if (names.length !== 1) throw errors.invalid('failover watches exactly one service');
        policy = parseFailover(req.query.failover);
      } else if (dc.local && names.length === 1) {
        // The server's policy for the service, as its reads apply it (`--failover`).
        policy = federation.failoverFor(names[0]!);
      }
      const lastId = req.headers['last-event-id'];
      let since = req.query.since;
      if (typeof lastId === 'string' && /^\d+$/.test(lastId)) since = Number(lastId);

      // The slot is held until the connection closes, however the stream ends.
      reply.raw.once('close', limits.open(limits.sse, req, reply));
      reply.hijack();
      const start = (first: SseFrame) =>
        SseStream.start(
          reply.raw,
          {
            'content-type': 'text/event-stream; charset=utf-8',
            'cache-control': 'no-cache',
            connection: 'keep-alive',
            'x-accel-buffering': 'no',
            'x-beacon-index': String(catalog.index),
            'x-beacon-datacenter': dc.name,
          },
          [RETRY, first],
        );
      if (policy) return failoverStream(names[0]!, policy);

      const carries = carriesFor(services, req.authz);
      let initial: SseFrame;
      if (since === undefined) initial = snapshotFrame(dc, services, carries);
      else {
        try {
          initial = new SseFrame(changes(catalog.replay(since, services).filter((h) => carries(h.event.service))));
        } catch (err) {
          if (!isBeaconError(err) || err.code !== 'compacted') throw err;
          initial = snapshotFrame(dc, services, carries);
        }
      }
      const out = start(initial);
      let feed = feedFor(dc, services, req.authz);
      feed.join(out);
      keepAlive(
        out,
        () => feed.leave(out),
        (rights) => {
          // What the stream carries is taken anew: a reset first, then the feed for these rights.
          const reset = snapshotFrame(dc, services, carriesFor(services, rights));
          const next = feedFor(dc, services, rights);
          out.write(reset);
          next.join(out);
          if (next !== feed) feed.leave(out);
          feed = next;
        },
      );

      /**
       * A failover stream: the answer is recomputed whenever the service changes in the local DC
       * or any remote one (the policy's order may change with RTTs), and sent as a `reset` when
       * it differs from the last one sent. A group of its own: the answer is the stream's.
       */
      function failoverStream(service: string, p: FailoverPolicy): void {
        let last = '';
        const answer = (): SseFrame | undefined => {
          const a = answerWithFailover(federation, service, p, (insts) => [...insts]);
          const reset: WatchReset = { index: a.entry.index, instances: a.instances, datacenter: a.datacenter };
          const body = JSON.stringify(reset);
          if (body === last) return undefined;
          last = body;
          return new SseFrame(rawFrame('reset', body, undefined));
        };
        const out = start(answer()!);
        const offs = federation.catalogs().map((r) =>
          r.onChange((c) => {
            if (!c.reset && !c.services.has(service)) return;
            const f = answer();
            if (f) own.push(f);
          }),
        );
        const own = fanout.group(() => offs.forEach((o) => o()));
        own.join(out);
        keepAlive(out, () => own.leave(out));
      }

      /**
       * Pings an open stream, follows its token, and stops it all when it closes. The token:
       * deleted, or no longer allowed a service the stream asked for by name, ends the stream (the
       * client's reconnect is then answered 403); other changes of its rights start the stream
       * over (`restart`) with what the token may see now.
       */
      function keepAlive(out: SseStream, stop: () => void, restart?: (rights: Authorizer) => void): void {
        metrics.watcherOpened('sse');
        let ping = clock.setTimeout(function beat() {
          if (!out.closed) out.write(PING);
          ping = clock.setTimeout(beat, PING_MS);
        }, PING_MS);
        const unfollow = followToken(acl, req, (next) => {
          if (!next || (services && [...services].some((n) => !allowed(next, 'service', n, 'read')))) {
            stop();
            out.res.end();
            return;
          }
          restart?.(next);
        });
        out.res.once('close', () => {
          stop();
          unfollow();
          ping.cancel();
          metrics.watcherClosed('sse');
        });
      }
    },
  );
};

type Datacenter = { catalog: CatalogReader; name: string };

/** Which services' changes a stream carries: those it names, or those its rights may read. */
function carriesFor(services: ReadonlySet<string> | undefined, authz: Authorizer): (service: string) => boolean {
  return services ? (service) => services.has(service) : (service) => authz.management || allowed(authz, 'service', service, 'read');
}

/** A `reset`: the full current state of what a stream carries. */
function snapshotFrame(dc: Datacenter, services: ReadonlySet<string> | undefined, carries: (service: string) => boolean): SseFrame {
  const catalog = dc.catalog;
  const instances: Instance[] = [];
  if (services) for (const s of services) instances.push(...catalog.service(s).instances);
  else for (const s of catalog.services()) if (carries(s.name)) instances.push(...catalog.service(s.name).instances);
  const index = catalog.index;
  return frame('reset', { index, instances, datacenter: dc.name } satisfies WatchReset, index);
}

/** Replayed history as `change` frames; only the last of each revision carries `id:`. */
function changes(entries: { event: ChangeEvent; instance?: Instance | undefined }[]): string {
  let out = '';
  entries.forEach((h, k) => {
    const next = entries[k + 1];
    const last = !next || next.event.index !== h.event.index;
    out += rawFrame('change', JSON.stringify(watchChange(h.event, h.instance)), last ? h.event.index : undefined);
  });
  return out;
}

function watchChange(event: ChangeEvent, instance: Instance | undefined): WatchChange {
  const c: WatchChange = { index: event.index, type: instance ? 'upsert' : 'delete', service: event.service, id: event.instanceId, event };
  if (instance) c.instance = instance;
  return c;
}

function frame(event: string, data: unknown, id: number | undefined): SseFrame {
  return new SseFrame(rawFrame(event, JSON.stringify(data), id));
}

function rawFrame(event: string, json: string, id: number | undefined): string {
  return `event: ${event}\n${id === undefined ? '' : `id: ${id}\n`}data: ${json}\n\n`;
}
