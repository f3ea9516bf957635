import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { isBeaconError, isServiceName, errors, LIMITS, type ChangeEvent, type Instance } from '@beacon/core';
import type { ApiDeps } from '../deps.js';
import { list } from '../query.js';

type Deps = Pick<ApiDeps, 'catalog' | 'clock' | 'metrics'>;

/** What a `change` event carries: the change, and the instance's state after it (absent once it is gone). */
export interface WatchChange {
  index: number;
  type: 'upsert' | 'delete';
  service: string;
  id: string;
  event: ChangeEvent;
  instance?: Instance;
}

/** A `reset` event: the full current state of the watched services; replaces whatever the client held. */
export interface WatchReset {
  index: number;
  instances: Instance[];
}

const PING_MS = 15_000;
/** A client that stops reading is cut loose rather than buffered without bound; it resumes with Last-Event-ID. */
const MAX_BUFFERED = 8 * 1024 * 1024;

/**
 * Server-Sent Events stream of changes. Every revision's events are written together and only the
 * last carries `id:`, so a client that resumes from its Last-Event-ID never misses half a revision.
 */
export const watchRoutes: FastifyPluginAsyncTypebox<Deps> = async (app, { catalog, clock, metrics }) => {
  let streams = 0;
  app.get(
    '/watch',
    {
      schema: {
        summary: 'Stream changes (Server-Sent Events)',
        description:
          'Events: `change` (data: {index, type: upsert|delete, service, id, event, instance}) and `reset` (data: {index, instances}) ' +
          'sent first when no `since` is given, or when `since` is older than history. Resume with `Last-Event-ID` or `since`.',
        querystring: Type.Object({
          service: Type.Optional(Type.Array(Type.String({ maxLength: 63 }), { maxItems: 256 })),
          since: Type.Optional(Type.Integer({ minimum: 0 })),
        }),
      },
    },
    async (req, reply) => {
      const names = list(req.query.service);
      for (const n of names) if (!isServiceName(n)) throw errors.invalid(`invalid service name ${JSON.stringify(n)}`);
      if (streams >= LIMITS.watchStreams) throw errors.tooMany(`too many watch streams open (${streams}); retry with backoff`);
      const services = names.length ? new Set(names) : undefined;
      const lastId = req.headers['last-event-id'];
      let since = req.query.since;
      if (typeof lastId === 'string' && /^\d+$/.test(lastId)) since = Number(lastId);

      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
        'x-beacon-index': String(catalog.index),
      });
      res.write('retry: 1000\n\n');

      const snapshot = (): string => {
        const instances: Instance[] = [];
        if (services) for (const s of services) instances.push(...catalog.service(s).instances);
        else for (const s of catalog.services()) instances.push(...catalog.service(s.name).instances);
        const index = catalog.index;
        return frame('reset', { index, instances } satisfies WatchReset, index);
      };
      const changes = (entries: { event: ChangeEvent; instance?: Instance | undefined }[]): string => {
        let out = '';
        entries.forEach((h, k) => {
          const next = entries[k + 1];
          const last = !next || next.event.index !== h.event.index;
          const c: WatchChange = { index: h.event.index, type: h.instance ? 'upsert' : 'delete', service: h.event.service, id: h.event.instanceId, event: h.event };
          if (h.instance) c.instance = h.instance;
          out += frame('change', c, last ? h.event.index : undefined);
        });
        return out;
      };

      let initial: string;
      if (since === undefined) initial = snapshot();
      else {
        try {
          initial = changes(catalog.replay(since, services));
        } catch (err) {
          if (!isBeaconError(err) || err.code !== 'compacted') throw err;
          initial = snapshot();
        }
      }
      res.write(initial);

      metrics.watchers.inc({ kind: 'sse' });
      streams++;
      let ping = clock.setTimeout(function beat() {
        res.write(': ping\n\n');
        ping = clock.setTimeout(beat, PING_MS);
      }, PING_MS);
      const off = catalog.onChange((c) => {
        if (c.reset) return void send(snapshot());
        const relevant = c.events.filter((e) => !services || services.has(e.service));
        if (relevant.length === 0) return;
        send(changes(relevant.map((event) => ({ event, instance: event.kind === 'deregistered' ? undefined : catalog.instance(event.instanceId) }))));
      });
      const send = (chunk: string) => {
        if (res.writableLength > MAX_BUFFERED) return void res.destroy();
        res.write(chunk);
      };
      res.once('close', () => {
        off();
        ping.cancel();
        metrics.watchers.dec({ kind: 'sse' });
        streams--;
      });
    },
  );
};

function frame(event: string, data: unknown, id: number | undefined): string {
  return `event: ${event}\n${id === undefined ? '' : `id: ${id}\n`}data: ${JSON.stringify(data)}\n\n`;
}
