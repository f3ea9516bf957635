import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';

const CRLF = Buffer.from('\r\n');

/**
 * One Server-Sent Events frame, encoded once however many streams carry it: the bytes of one
 * HTTP/1.1 chunk (size line, frame, CRLF), with the frame alone as a view into them for a
 * response that is not chunked.
 */
export class SseFrame {
  /** The frame as one HTTP chunk. */
  readonly chunk: Buffer;
  /** The frame's own bytes (a view into `chunk`). */
  readonly text: Buffer;

  constructor(text: string | Buffer) {
    const size = typeof text === 'string' ? Buffer.byteLength(text) : text.length;
    const head = `${size.toString(16)}\r\n`;
    this.chunk = typeof text === 'string' ? Buffer.from(`${head}${text}\r\n`) : Buffer.concat([Buffer.from(head), text, CRLF]);
    this.text = this.chunk.subarray(head.length, head.length + size);
  }

  /** Several frames as one chunk, for one write per stream. */
  static join(frames: readonly SseFrame[]): SseFrame {
    return new SseFrame(Buffer.concat(frames.map((f) => f.text)));
  }
}

/** An SSE comment that keeps idle connections (and the proxies between) from timing out. */
export const PING = new SseFrame(': ping\n\n');

/**
 * The body of one hijacked SSE response, written one pre-encoded frame at a time.
 *
 * A chunked response is written straight to its socket: `res.write` makes four writes of one
 * chunk (size line, frame, two CRLFs), corks the socket and uncorks it on a `nextTick`, which on
 * loopback cost as much CPU again as the `write(2)` itself (10,000 streams: ~170–220 ms of
 * server CPU against ~90 ms, bare `node:http` beside raw socket writes of the same frame). That
 * is only right while the socket is this response's and open: Node attaches it once the earlier
 * responses on a keep-alive connection are done, and until then `res.write` buffers, which is
 * what the fallback does.
 */
export class SseStream {
  /** Whether the head said `Transfer-Encoding: chunked` (Node's choice for an HTTP/1.1 request). */
  private readonly chunked: boolean;

  private constructor(readonly res: ServerResponse) {
    this.chunked = res.chunkedEncoding;
  }

  /**
   * Sends the head and the `first` frames (one system call for all) and returns the stream. The
   * head is flushed here because frames may go straight to the socket, past Node's response.
   */
  static start(res: ServerResponse, headers: OutgoingHttpHeaders, first: readonly SseFrame[]): SseStream {
    res.cork();
    res.writeHead(200, headers);
    res.flushHeaders();
    const out = new SseStream(res);
    for (const f of first) out.write(f);
    res.uncork();
    return out;
  }

  get closed(): boolean {
    return this.res.destroyed || this.res.writableEnded;
  }

  /** Bytes accepted but not yet taken by the kernel. */
  get buffered(): number {
    return this.res.writableLength;
  }

  write(frame: SseFrame): void {
    // An empty chunk is the end of a chunked body; an ended response would answer an 'error'.
    if (frame.text.length === 0 || this.closed) return;
    const socket = this.res.socket;
    if (this.chunked && socket?.writable) socket.write(frame.chunk);
    else this.res.write(frame.text);
  }

  /**
   * The socket's descriptor when a frame may be sent on it past Node (by a {@link BulkSender}),
   * else -1: a plain TCP socket that this chunked response writes to, with nothing queued in Node
   * or libuv, so bytes sent now follow everything written before.
   */
  directFd(): number {
    if (!this.chunked || this.closed) return -1;
    const socket = this.res.socket;
    if (!socket?.writable || socket.writableLength !== 0 || (socket as TLSSocket).encrypted) return -1;
    const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
    return typeof fd === 'number' && fd >= 0 ? fd : -1;
  }

  /**
   * After a direct send of `frame`'s chunk that took `sent` bytes (negative: an error), the rest
   * goes through Node: it queues what the kernel had no room for, and meets the error itself.
   */
  sent(frame: SseFrame, sent: number): void {
    if (sent === frame.chunk.length) return;
    this.res.socket?.write(sent > 0 ? frame.chunk.subarray(sent) : frame.chunk);
  }

  /** Several frames in one system call. */
  writeAll(frames: readonly SseFrame[]): void {
    this.res.cork();
    for (const f of frames) this.write(f);
    this.res.uncork();
  }
}
