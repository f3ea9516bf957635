// Shared by the benchmarks that park watchers on a server: SSE streams over raw sockets (cheap on
// the load generator, exact arrival times) and opening thousands of them without overflowing the
// listen backlog.
import net from 'node:net';
import { performance } from 'node:perf_hooks';

/**
 * An SSE watch on `path`. Set `w.expect` to a marker (and `w.at = 0`): the arrival time of the first
 * chunk holding it is recorded in `w.at`, and `w.onDeliver` is called. Resolves once the first
 * `reset` event arrived (the stream is live).
 */
export function openSse(port, path) {
  return new Promise((resolveOpen, rejectOpen) => {
    const w = { expect: undefined, at: 0, onDeliver: undefined, tail: '', ready: false, sock: undefined };
    const sock = net.connect({ port, host: '127.0.0.1' });
    w.sock = sock;
    sock.setNoDelay(true);
    sock.setEncoding('latin1');
    sock.on('connect', () => sock.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n`));
    sock.on('data', (chunk) => {
      const now = performance.now();
      const text = w.tail + chunk;
      if (w.expect !== undefined && w.at === 0 && text.includes(w.expect)) {
        w.at = now;
        w.onDeliver?.();
      }
      if (!w.ready && text.includes('event: reset')) {
        w.ready = true;
        resolveOpen(w);
      }
      w.tail = text.slice(-96);
    });
    sock.on('error', (err) => (w.ready ? undefined : rejectOpen(err)));
    sock.setTimeout(30_000, () => (w.ready ? undefined : sock.destroy(new Error('SSE watch did not start'))));
  });
}

/** Opens `count` watchers with `open()`, `batch` at a time, so a dropped SYN never costs a 1 s retransmit. */
export async function openMany(count, open, batch = 100) {
  const out = [];
  for (let i = 0; i < count; i += batch) out.push(...(await Promise.all(Array.from({ length: Math.min(batch, count - i) }, open))));
  return out;
}
