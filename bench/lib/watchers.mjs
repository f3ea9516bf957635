// Shared by the benchmarks that park watchers on a server: SSE streams over raw sockets (cheap on
// the load generator, exact arrival times) and opening thousands of them without overflowing the
// listen backlog.
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { waitFor } from './proc.mjs';
import { buildWatchLoadgen, openCLoadgen } from './watch-loadgen.mjs';

// Every SSE watcher reads into this one buffer: with `onread`, a socket hands each read's bytes to
// its callback synchronously, with no Buffer allocated per read, no Readable stream and no
// 'data' event. Measured on the compat bench's 10,000-stream fan-out (loaded machine): the
// load generator's CPU per delivery fell from 10–13 µs (a 'data' listener on a latin1-decoding
// socket) to the figure in docs/benchmarks.md; on 2 shared cores that time is taken from the
// server and delays the arrival timestamps, so it is measurement cost, not the server's.
const RECV = Buffer.allocUnsafe(64 * 1024);

/**
 * An SSE watch on `path`. Set `w.expect` to a marker (and `w.at = 0`): the arrival time of the
 * first `change` event whose data holds it is recorded in `w.at`, and `w.onDeliver` is called.
 * Every event is parsed (HTTP chunked framing, then SSE fields); `w.events` counts them. Resolves
 * once the first `reset` event arrived (the stream is live).
 */
export function openSse(port, path) {
  return new Promise((resolveOpen, rejectOpen) => {
    const w = { expect: undefined, at: 0, onDeliver: undefined, ready: false, events: 0, sock: undefined };
    let now = 0;
    let expect;
    let expectBytes;
    const parser = new SseParser((type, bytes, start, end) => {
      w.events++;
      if (type === 'change') {
        if (w.expect === undefined || w.at !== 0) return;
        if (w.expect !== expect) expectBytes = Buffer.from((expect = w.expect), 'latin1');
        const i = bytes.indexOf(expectBytes, start);
        if (i >= 0 && i + expectBytes.length <= end) {
          w.at = now;
          w.onDeliver?.();
        }
      } else if (type === 'reset' && !w.ready) {
        w.ready = true;
        resolveOpen(w);
      }
    });
    const sock = net.connect({
      port,
      host: '127.0.0.1',
      onread: {
        buffer: RECV,
        callback: (n, buf) => {
          now = performance.now();
          const err = parser.push(buf, n);
          if (err) sock.destroy(err);
        },
      },
    });
    w.sock = sock;
    sock.setNoDelay(true);
    sock.on('connect', () => sock.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n`));
    sock.on('error', (err) => (w.ready ? undefined : rejectOpen(err)));
    sock.setTimeout(30_000, () => (w.ready ? undefined : sock.destroy(new Error('SSE watch did not start'))));
  });
}

const LFLF = Buffer.from('\n\n');
const EVENT = Buffer.from('event:');
const DATA = Buffer.from('data:');

/** Whether the line starting at `pos` of `bytes` (ending at `eol`) is field `name` (`name` holds its colon). */
const isField = (bytes, pos, eol, name) => eol - pos >= name.length && name.compare(bytes, pos, pos + name.length) === 0;

/**
 * The client side of one SSE response: the HTTP head, then the body (chunked or not) split into
 * events at blank lines, each handed to `onEvent(type, bytes, start, end)` with its `event:` name
 * (default "message") and where its data lies in `bytes` (from the first `data:` line's value to
 * the end of the last; valid during the call only). Parsed on the bytes, without a string per
 * event: the load generator shares the 2 cores with the server it measures.
 */
export class SseParser {
  head = '';
  inBody = false;
  chunked = false;
  /** Chunked framing: bytes left of the current chunk; -1 while reading a size line; -2 after the last chunk. */
  left = -1;
  size = '';
  /** CR/LF bytes to skip after a chunk's data. */
  skip = 0;
  /** The start of an event that has not all arrived (a copy: reads share one buffer). */
  partial = undefined;

  constructor(onEvent) {
    this.onEvent = onEvent;
  }

  /** Feeds `n` bytes of `buf`; returns an Error when the response is not a stream. */
  push(buf, n) {
    let i = 0;
    if (!this.inBody) {
      this.head += buf.toString('latin1', 0, n);
      const end = this.head.indexOf('\r\n\r\n');
      if (end < 0) return undefined;
      const head = this.head.slice(0, end);
      if (!head.startsWith('HTTP/1.1 200')) return new Error(`SSE watch answered ${head.split('\r\n')[0]}`);
      this.chunked = /\r\ntransfer-encoding: *chunked/i.test(head);
      this.inBody = true;
      i = n - (this.head.length - end - 4);
      this.head = '';
    }
    if (!this.chunked) {
      if (i < n) this.body(buf, i, n);
      return undefined;
    }
    while (i < n) {
      if (this.skip > 0) {
        this.skip--;
        i++;
      } else if (this.left > 0) {
        const take = Math.min(this.left, n - i);
        this.body(buf, i, i + take);
        this.left -= take;
        i += take;
        if (this.left === 0) {
          this.left = -1;
          this.skip = 2;
        }
      } else if (this.left === -1) {
        const nl = buf.indexOf(10, i);
        const stop = nl < 0 || nl >= n ? n : nl;
        this.size += buf.toString('latin1', i, stop);
        i = stop;
        if (stop === n) break;
        i++;
        const size = Number.parseInt(this.size, 16);
        this.size = '';
        if (!Number.isFinite(size)) return new Error('bad chunk size');
        this.left = size === 0 ? -2 : size;
        if (size === 0) this.skip = 2; // the blank line that ends the body
      } else return new Error('bytes after the last chunk');
    }
    return undefined;
  }

  body(buf, from, to) {
    let bytes = buf.subarray(from, to);
    if (this.partial) {
      bytes = Buffer.concat([this.partial, bytes]);
      this.partial = undefined;
    }
    let start = 0;
    for (let end = bytes.indexOf(LFLF, start); end >= 0; end = bytes.indexOf(LFLF, start)) {
      this.event(bytes, start, end);
      start = end + 2;
    }
    if (start < bytes.length) this.partial = Buffer.from(bytes.subarray(start));
  }

  event(bytes, start, end) {
    let type = 'message';
    let dataStart = -1;
    let dataEnd = -1;
    for (let pos = start; pos < end; ) {
      let eol = bytes.indexOf(10, pos);
      if (eol < 0 || eol > end) eol = end;
      if (isField(bytes, pos, eol, EVENT)) {
        const v = pos + EVENT.length + (bytes[pos + EVENT.length] === 0x20 ? 1 : 0);
        type = bytes.toString('latin1', v, eol);
      } else if (isField(bytes, pos, eol, DATA)) {
        if (dataStart < 0) dataStart = pos + DATA.length + (bytes[pos + DATA.length] === 0x20 ? 1 : 0);
        dataEnd = eol;
      }
      pos = eol + 1;
    }
    if (dataStart >= 0) this.onEvent(type, bytes, dataStart, dataEnd);
  }
}

/** Opens `count` watchers with `open()`, `batch` at a time, so a dropped SYN never costs a 1 s retransmit. */
export async function openMany(count, open, batch = 100) {
  const out = [];
  for (let i = 0; i < count; i += batch) out.push(...(await Promise.all(Array.from({ length: Math.min(batch, count - i) }, open))));
  return out;
}

/**
 * Re-arms run after every answer that arrived in this turn has been stamped: a write(2) per
 * re-armed query (~10 µs here) made in between would delay the stamps of the answers read after
 * it, and count the load generator's own work as the server's latency.
 */
let rearms = [];
function rearm(f) {
  if (rearms.length === 0) setImmediate(() => {
    const run = rearms;
    rearms = [];
    for (const g of run) g();
  });
  rearms.push(f);
}

/** A blocking-query loop on one keep-alive connection: GET …?index=N&wait=60s, and again with the new index. */
export function openBlocking(port, path) {
  return new Promise((resolveOpen, rejectOpen) => {
    const w = { index: 0, at: 0, onDeliver: undefined, buf: '', sock: undefined, armed: false, timeouts: 0 };
    const sock = net.connect({ port, host: '127.0.0.1' });
    w.sock = sock;
    sock.setNoDelay(true);
    sock.setEncoding('latin1');
    const send = (index) => {
      w.armed = index > 0;
      sock.write(`GET ${path}${index > 0 ? `?index=${index}&wait=60s` : ''} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
    };
    sock.on('connect', () => send(0));
    sock.on('data', (chunk) => {
      const now = performance.now();
      w.buf += chunk;
      for (;;) {
        const he = w.buf.indexOf('\r\n\r\n');
        if (he < 0) return;
        const head = w.buf.slice(0, he);
        const len = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? NaN);
        const index = Number(/\r\nx-beacon-index: *(\d+)/i.exec(head)?.[1] ?? NaN);
        const status = Number(head.slice(9, 12));
        if (!Number.isFinite(len)) return void sock.destroy(new Error(`answer without content-length: ${head}`));
        if (w.buf.length < he + 4 + len) return;
        w.buf = w.buf.slice(he + 4 + len);
        if (status !== 200 || !Number.isFinite(index)) return void sock.destroy(new Error(`blocking query answered ${status}`));
        const wasArmed = w.armed;
        const changed = index > w.index;
        if (wasArmed && !changed) w.timeouts++;
        w.index = Math.max(w.index, index);
        if (!wasArmed) resolveOpen(w);
        else if (changed && w.at === 0) {
          w.at = now;
          w.onDeliver?.();
        }
        rearm(() => send(w.index));
      }
    });
    sock.on('error', (err) => rejectOpen(err));
    sock.setTimeout(20_000, () => (w.index > 0 ? undefined : sock.destroy(new Error('blocking query did not answer'))));
  });
}

/**
 * `count` watches on `127.0.0.1:port` `path`, `kind` 'sse' or 'blocking' (re-armed with the
 * answer's `indexHeader`), held by the C load generator (watch-loadgen.c) unless `loadgen` is
 * 'node' or it cannot be built (then `say` is told why): the Node watchers above spent ~13 µs per
 * SSE event and ~22 µs per blocking answer, as much CPU as the server spent on them, and their lag
 * counted as the server's. `measure(token, send)` runs `send` (the write) and gives each watch's
 * arrival (performance.now ms, 0 = not within `timeoutMs` for Node's) and the generator's CPU.
 */
export async function openWatchSet({ kind, port, path, count, indexHeader, loadgen = 'c', timeoutMs, say }) {
  const built = loadgen === 'c' ? buildWatchLoadgen() : { reason: '--loadgen node' };
  if (built.binary) {
    const gen = await openCLoadgen(built.binary, { mode: kind, port, path, count, indexHeader });
    // hrtime (the generator's clock) and performance.now tick together: one offset maps them.
    const offsetMs = performance.now() - Number(process.hrtime.bigint()) / 1e6;
    return {
      kind: 'c',
      count,
      pid: gen.pid,
      rearmed: async () => {},
      async measure(token, send) {
        const got = await gen.expect(token, send);
        return { cpuMs: got.cpuMs, arrivals: got.times.map((t) => (t === 0n ? 0 : Number(t) / 1e6 + offsetMs)) };
      },
      close: () => gen.close(),
    };
  }
  if (built.reason !== '--loadgen node') say(`watchers in Node (${built.reason})`);
  const watchers = await openMany(count, kind === 'sse' ? () => openSse(port, path) : () => openBlocking(port, path), 250);
  return {
    kind: 'node',
    count,
    pid: undefined,
    rearmed: () => waitFor('blocking watchers to re-arm', () => watchers.every((w) => w.armed), 5_000, undefined, 1),
    async measure(token, send) {
      let pending = watchers.length;
      let allDone;
      const done = new Promise((r) => (allDone = r));
      for (const w of watchers) {
        w.at = 0;
        w.expect = token;
        w.onDeliver = () => --pending === 0 && allDone();
      }
      const own0 = process.cpuUsage();
      await send();
      await Promise.race([done, sleep(timeoutMs)]);
      const own = process.cpuUsage(own0);
      for (const w of watchers) w.onDeliver = undefined;
      return { cpuMs: (own.user + own.system) / 1000, arrivals: watchers.map((w) => w.at) };
    },
    async close() {
      for (const w of watchers) w.sock.destroy();
    },
  };
}
