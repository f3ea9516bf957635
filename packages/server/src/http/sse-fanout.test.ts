import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { nativeBulkSender, type BulkSender } from './sse-bulk-send.js';
import { SseFanout } from './sse-fanout.js';
import { SseFrame, SseStream } from './sse-frame.js';

const addon = nativeBulkSender();
if (!addon) console.log('sse-fanout.test: the fan-out addon is not built (no C compiler?): only the socket.write path is tested');

/** A real HTTP server whose every request becomes an SSE stream of one group. */
async function harness(sender: BulkSender | undefined) {
  const fanout = new SseFanout(sender);
  const group = fanout.group(() => {});
  const streams: SseStream[] = [];
  const server = http.createServer((_req, res) => {
    const out = SseStream.start(res, { 'content-type': 'text/event-stream' }, [new SseFrame('event: reset\ndata: {}\n\n')]);
    streams.push(out);
    group.join(out);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  const clients: { sock: net.Socket; bytes: Buffer[] }[] = [];
  const open = async (n: number) => {
    for (let i = 0; i < n; i++) {
      const sock = net.connect(port, '127.0.0.1');
      const c = { sock, bytes: [] as Buffer[] };
      sock.on('data', (b) => c.bytes.push(b));
      sock.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
      clients.push(c);
    }
    await until(() => streams.length === clients.length && clients.every((c) => Buffer.concat(c.bytes).includes('event: reset')));
  };
  const close = async () => {
    for (const c of clients) c.sock.destroy();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  };
  return { group, streams, clients, open, close };
}

async function until(ok: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** The body of a chunked response, every chunk size checked; undefined while a chunk is incomplete. */
function body(bytes: Buffer): string | undefined {
  const text = bytes.toString('latin1');
  let rest = text.slice(text.indexOf('\r\n\r\n') + 4);
  let out = '';
  while (rest.length > 0) {
    const nl = rest.indexOf('\r\n');
    const size = Number.parseInt(rest.slice(0, nl), 16);
    if (nl < 0 || rest.length < nl + 4 + size) return undefined;
    expect(rest.slice(nl + 2 + size, nl + 4 + size)).toBe('\r\n');
    out += rest.slice(nl + 2, nl + 2 + size);
    rest = rest.slice(nl + 4 + size);
  }
  return out;
}

let cleanup: (() => Promise<void>) | undefined;
afterEach(async () => {
  await cleanup?.();
  cleanup = undefined;
});

describe.each([
  ['one bulk send per flush (addon)', addon],
  ['one socket.write per stream', undefined],
])('SseFanout: %s', (_name, sender) => {
  it.skipIf(_name.includes('addon') && !addon)('gives every stream the turn\'s frames as one exact chunk', async () => {
    const calls: number[] = [];
    const counting: BulkSender | undefined = sender && { sendAll: (fds, data, out) => (calls.push(fds.length), sender.sendAll(fds, data, out)) };
    const h = await harness(counting);
    cleanup = h.close;
    await h.open(40);
    h.group.push(new SseFrame('event: change\ndata: {"n":1}\n\n'));
    h.group.push(new SseFrame('event: change\ndata: {"n":2}\n\n'));
    const want = 'event: reset\ndata: {}\n\nevent: change\ndata: {"n":1}\n\nevent: change\ndata: {"n":2}\n\n';
    await until(() => h.clients.every((c) => body(Buffer.concat(c.bytes))?.length === want.length));
    for (const c of h.clients) expect(body(Buffer.concat(c.bytes))).toBe(want);
    if (sender) expect(calls).toEqual([40]);
  });

  it.skipIf(_name.includes('addon') && !addon)('keeps bytes in order when a client stops reading and the kernel takes only part of a frame', async () => {
    const h = await harness(sender);
    cleanup = h.close;
    await h.open(2);
    const slow = h.clients[0]!;
    slow.sock.pause();
    // Far more than the socket buffers hold: the first send is partial, the rest queues in Node,
    // and the frames after it must wait behind that queue.
    const frames = [1, 2, 3, 4].map((n) => new SseFrame(`event: change\ndata: ${String(n).repeat(1 << 20)}\n\n`));
    for (const f of frames) {
      h.group.push(f);
      await new Promise((r) => setImmediate(r));
    }
    const queued = h.streams.filter((s) => s.buffered > 0);
    expect(queued.length).toBeGreaterThan(0);
    // Bytes queued in Node go first: nothing may be sent past them.
    for (const s of queued) expect(s.directFd()).toBe(-1);
    slow.sock.resume();
    const want = `event: reset\ndata: {}\n\n${frames.map((f) => f.text.toString()).join('')}`;
    await until(() => h.clients.every((c) => body(Buffer.concat(c.bytes)) !== undefined && Buffer.concat(c.bytes).length > want.length), 20_000);
    for (const c of h.clients) expect(body(Buffer.concat(c.bytes))).toBe(want);
  });
});
