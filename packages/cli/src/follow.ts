import { describeFetchError } from '@beacon/client/http';
import { parseSse } from '@beacon/client/sse';
import { connect, serverUrls, type GlobalOptions } from './connection.js';

export interface Frame {
  event: string;
  data: any;
}

/**
 * Follows `/api/v1/watch` for `command` (which names itself in its complaints) until `signal` aborts, across the servers in turn and through restarts:
 * each reconnection resumes with Last-Event-ID, so nothing is missed or repeated.
 */
export async function followWatch(
  command: string,
  opts: GlobalOptions,
  services: readonly string[],
  from: string | undefined,
  onFrame: (f: Frame) => void,
  signal: AbortSignal,
  /** More of the watch's query: `dc` for another datacenter. */
  scope: Record<string, string> = {},
): Promise<void> {
  const http = connect(opts);
  let lastId = from;
  while (!signal.aborted) {
    for (const server of serverUrls(opts.server)) {
      try {
        const res = await http.fetch(http.url(server, '/api/v1/watch', { service: [...services], ...scope }), {
          headers: { accept: 'text/event-stream', ...(lastId ? { 'last-event-id': lastId } : {}) },
          signal,
        });
        if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
        for await (const ev of parseSse(res.body)) {
          if (ev.id) lastId = ev.id;
          // Only moves the resume point: nothing to show.
          if (ev.event === 'index') continue;
          onFrame({ event: ev.event, data: JSON.parse(ev.data) });
        }
      } catch (err) {
        if (signal.aborted) return;
        process.stderr.write(`${command}: ${server}: ${describeFetchError(err, server)}; retrying\n`);
      }
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** Aborts on Ctrl-C or SIGTERM, so a follow ends cleanly with status 0. */
export function untilInterrupted(): AbortSignal {
  const ac = new AbortController();
  process.once('SIGINT', () => ac.abort());
  process.once('SIGTERM', () => ac.abort());
  return ac.signal;
}
