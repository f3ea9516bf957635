import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import type { BeaconError, Clock, Timer } from '@beacon/core';
import { REQUEST_LIMITS, RequestParser, type RequestEvents, type RequestHead, type RequestLimits } from './request-parser.js';

/**
 * Answers the proxy's own error (a `BeaconError` as `{error:{code,message,details}}`) and closes the
 * connection: for a client the proxy will not read from again (a malformed request, a refused
 * upgrade). utf8 throughout: the message may quote any character, and the length must count bytes.
 */
export function closeWithError(socket: Socket, status: number, err: BeaconError): void {
  const body = JSON.stringify(err.toJSON());
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`, 'utf8');
}

/** A client's request as the forwarder sees it. */
export interface ProxyRequest {
  readonly head: RequestHead;
  readonly remoteAddress: string;
  /**
   * The body: null when there is none; the whole body when it has a Content-Length of at most
   * {@link DownstreamOptions.maxBufferedBody} (so a retry can send it again); else a stream.
   */
  readonly body: Buffer | Readable | null;
  /** The first value of a header, by lower-case name. */
  header(name: string): string | undefined;
}

/** What a listener does with requests: the L7 forwarder. */
export interface DownstreamHandler {
  request(req: ProxyRequest, res: ProxyResponse): void;
  /** An Upgrade request: from here on `socket` is the handler's; `rest` are bytes that followed the head. */
  upgrade(req: ProxyRequest, socket: Socket, rest: Buffer): void;
  /** A request was malformed and answered 400 (or its connection cut). */
  refused(err: BeaconError, client: string): void;
}

export interface DownstreamOptions {
  clock: Clock;
  /** True once the proxy drains: answers close their connection. */
  draining(): boolean;
  limits: RequestLimits;
  /** Largest request body (by Content-Length) buffered whole before it is sent, so that it can be retried. */
  maxBufferedBody: number;
  /** How long a keep-alive connection may sit idle between requests. */
  keepAliveMs: number;
  /** How long a client may take to send a head, or stall while a buffered body comes in. */
  headTimeoutMs: number;
}

export const DOWNSTREAM_DEFAULTS: Omit<DownstreamOptions, 'clock' | 'draining'> = {
  limits: REQUEST_LIMITS,
  maxBufferedBody: 64 * 1024,
  keepAliveMs: 5_000,
  headTimeoutMs: 60_000,
};

/** How often idle and stalled connections are looked for. */
const SWEEP_MS = 1_000;
const EMPTY = Buffer.alloc(0);
/** Below this, an answer's head and first body piece are copied into one buffer: one write. */
const COALESCE_BYTES = 16 * 1024;

/**
 * The client side of L7 on plain `net` sockets: each connection's bytes go through a
 * {@link RequestParser}, one request at a time (pipelined ones wait their turn), and each answer
 * leaves in as few writes as it can — the head together with the first body piece. It replaced
 * node:http's server, whose per-request objects and stream plumbing were a quarter of the proxy's
 * CPU (docs/proxy.md, Performance).
 *
 * @example
 * const down = new Downstream(forwarder, { clock, draining: () => false });
 * net.createServer({ noDelay: true, allowHalfOpen: true }, (s) => down.accept(s)).listen(15001);
 */
export class Downstream {
  private readonly options: DownstreamOptions;
  private readonly connections = new Set<ClientConnection>();
  private sweeper: Timer | undefined;

  constructor(
    private readonly handler: DownstreamHandler,
    options: Pick<DownstreamOptions, 'clock' | 'draining'> & Partial<DownstreamOptions>,
  ) {
    this.options = { ...DOWNSTREAM_DEFAULTS, ...options };
  }

  accept(socket: Socket): void {
    const conn = new ClientConnection(socket, this.handler, this.options, () => this.connections.delete(conn));
    this.connections.add(conn);
    this.sweeper ??= this.options.clock.setTimeout(() => this.sweep(), SWEEP_MS);
  }

  /** Closes connections between requests (draining: busy ones close after their answer). */
  closeIdle(): void {
    for (const c of this.connections) if (c.idle) c.destroy();
  }

  private sweep(): void {
    this.sweeper = undefined;
    for (const c of this.connections) c.tick(SWEEP_MS);
    if (this.connections.size) this.sweeper = this.options.clock.setTimeout(() => this.sweep(), SWEEP_MS);
  }
}

class Request implements ProxyRequest {
  body: Buffer | Readable | null = null;
  constructor(
    readonly head: RequestHead,
    readonly remoteAddress: string,
  ) {}

  header(name: string): string | undefined {
    const h = this.head.headers;
    for (let i = 0; i < h.length; i += 2) {
      const n = h[i]!;
      if (n.length === name.length && n.toLowerCase() === name) return h[i + 1];
    }
    return undefined;
  }
}

/** One client connection: parsing, the answer under way, keep-alive and pipelining. */
class ClientConnection implements RequestEvents {
  private readonly parser: RequestParser;
  /** Bytes received and not yet parsed. */
  private pending: Buffer | undefined;
  private request: Request | undefined;
  private response: ProxyResponse | undefined;
  /** The request was handed to the forwarder (a buffered body waits for its end first). */
  private dispatched = false;
  private bodyStream: Readable | undefined;
  private bodyChunks: Buffer[] | undefined;
  /** The body stream is full: parsing waits for it to be read. */
  private bodyPaused = false;
  private upgradeRequest: Request | undefined;
  /** Closing after the current answer, or handed over (upgrade): no more requests. */
  private done = false;
  /** The client sent FIN: answer what it sent, then close. */
  private clientEnded = false;
  private staleMs = 0;
  private lastBytes = 0;
  private readonly remote: string;

  constructor(
    readonly socket: Socket,
    private readonly handler: DownstreamHandler,
    private readonly options: DownstreamOptions,
    private readonly forget: () => void,
  ) {
    this.parser = new RequestParser(this, options.limits);
    this.remote = socket.remoteAddress ?? '';
    socket.on('data', this.onData);
    // The listener is half-open: a client that shuts its side after sending still gets its answers.
    socket.once('end', () => {
      this.clientEnded = true;
      if (!this.response && !this.pending && !this.done) this.socket.end();
    });
    // Errors (ECONNRESET, EPIPE) end in 'close', which is where the answer under way learns of it.
    socket.on('error', () => {});
    socket.once('close', () => this.onClose());
  }

  /** Between requests with nothing received: safe to close. */
  get idle(): boolean {
    return !this.response && !this.pending && !this.upgradeRequest;
  }

  destroy(): void {
    this.socket.destroy();
  }

  /** The sweep: closes connections idle past keep-alive, or stalled mid-head or mid-body. */
  tick(ms: number): void {
    const bytes = this.socket.bytesRead;
    if (bytes !== this.lastBytes || (this.dispatched && this.response) || this.done) {
      this.lastBytes = bytes;
      this.staleMs = 0;
      return;
    }
    this.staleMs += ms;
    if (this.staleMs >= (this.idle ? this.options.keepAliveMs : this.options.headTimeoutMs)) this.socket.destroy();
  }

  private readonly onData = (d: Buffer): void => {
    if (this.done) return;
    this.pending = this.pending ? Buffer.concat([this.pending, d]) : d;
    this.pump();
  };

  /** Parses what is pending as far as the request under way allows. */
  private pump(): void {
    while (this.pending && !this.done && !this.bodyPaused && !(this.response && this.parser.idle)) {
      const data = this.pending;
      let at: number;
      try {
        at = this.parser.feed(data, 0);
      } catch (err) {
        this.refuse(err as BeaconError);
        return;
      }
      this.pending = at < data.length ? data.subarray(at) : undefined;
      if (this.upgradeRequest) return this.handOver();
      if (at === 0) break;
    }
    // Pipelined bytes beyond one head's worth wait in the kernel, not here.
    if (this.pending && this.pending.length > this.options.limits.maxHeadBytes && !this.bodyPaused) this.socket.pause();
  }

  onHead(head: RequestHead): void {
    const req = new Request(head, this.remote);
    if (head.upgrade) {
      this.upgradeRequest = req;
      return;
    }
    this.request = req;
    this.response = new ProxyResponse(this, head, this.options.draining);
    this.dispatched = false;
    const hasBody = head.chunked || !!head.contentLength;
    if (!hasBody) return this.dispatch();
    if (head.expectContinue) this.socket.write('HTTP/1.1 100 Continue\r\n\r\n', 'latin1');
    if (!head.chunked && head.contentLength! <= this.options.maxBufferedBody) {
      this.bodyChunks = [];
      return;
    }
    const stream = new Readable({
      read: () => {
        if (!this.bodyPaused) return;
        this.bodyPaused = false;
        this.socket.resume();
        this.pump();
      },
    });
    this.bodyStream = stream;
    req.body = stream;
    this.dispatch();
  }

  onBody(chunk: Buffer): void {
    // A view into a buffer this connection no longer writes to: kept without copying.
    if (this.bodyChunks) this.bodyChunks.push(chunk);
    else if (this.bodyStream && !this.bodyStream.push(chunk)) {
      this.bodyPaused = true;
      this.socket.pause();
    }
  }

  onEnd(): void {
    if (this.bodyChunks) {
      const chunks = this.bodyChunks;
      this.bodyChunks = undefined;
      this.request!.body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      this.dispatch();
    } else if (this.bodyStream) {
      this.bodyStream.push(null);
      this.bodyStream = undefined;
    }
  }

  private dispatch(): void {
    this.dispatched = true;
    this.handler.request(this.request!, this.response!);
  }

  private handOver(): void {
    const req = this.upgradeRequest!;
    const rest = this.pending ?? EMPTY;
    this.pending = undefined;
    this.done = true;
    // Paused before our listener goes, so nothing flows to nobody until the handler pipes it.
    this.socket.pause();
    this.socket.off('data', this.onData);
    this.handler.upgrade(req, this.socket, rest);
  }

  /** A malformed request: 400 and close, or just close when another answer is under way. */
  private refuse(err: BeaconError): void {
    this.done = true;
    this.pending = undefined;
    this.handler.refused(err, this.remote);
    if (this.bodyStream) this.bodyStream.destroy(err);
    if (this.response) return void this.socket.destroy();
    closeWithError(this.socket, 400, err);
  }

  /** @internal The answer under way is complete. */
  finished(res: ProxyResponse): void {
    this.response = undefined;
    this.request = undefined;
    this.dispatched = false;
    // A body the instance did not read to its end leaves the next request's start unknown: close.
    if (!res.keepAlive || this.parser.inBody || this.done || (this.clientEnded && !this.pending)) {
      this.done = true;
      this.pending = undefined;
      this.socket.end();
      return;
    }
    if (this.socket.isPaused() && !this.bodyPaused) this.socket.resume();
    // The next pipelined request, once this answer's completion has run its course.
    if (this.pending) queueMicrotask(() => this.pump());
  }

  private onClose(): void {
    this.done = true;
    this.forget();
    this.bodyStream?.destroy(Object.assign(new Error('the client closed the connection'), { code: 'ECONNABORTED' }));
    const res = this.response;
    this.response = undefined;
    res?.gone();
  }
}

type Framing = 'none' | 'length' | 'chunked' | 'close';

/**
 * The answer to one request. The head is held until the first body piece (or the end) so both
 * go out in one write; the framing follows the instance's (Content-Length kept), chunked for an
 * HTTP/1.1 client otherwise, or until close for HTTP/1.0.
 */
export class ProxyResponse {
  headersSent = false;
  /** The connection may carry another request after this answer. */
  keepAlive: boolean;
  private head: string | undefined;
  private framing: Framing = 'none';
  private ended = false;
  private closeListener: ((finished: boolean) => void) | undefined;

  constructor(
    private readonly conn: ClientConnection,
    private readonly req: RequestHead,
    private readonly draining: () => boolean,
  ) {
    this.keepAlive = req.keepAlive;
  }

  /** `cb` runs once: when the answer is complete (true) or the client went away first (false). */
  onClose(cb: (finished: boolean) => void): void {
    this.closeListener = cb;
  }

  /** Calls `cb` once the client's socket takes writes again. */
  onDrain(cb: () => void): void {
    this.conn.socket.once('drain', cb);
  }

  /** Starts the answer with an instance's status and headers (hop-by-hop ones already removed). */
  start(status: number, statusText: string, headers: readonly string[]): void {
    this.headersSent = true;
    let head = `HTTP/1.1 ${status} ${statusText}\r\n`;
    let hasLength = false;
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i]!;
      if (name.length === 14 && name.toLowerCase() === 'content-length') hasLength = true;
      head += `${name}: ${headers[i + 1]}\r\n`;
    }
    if (this.req.method === 'HEAD' || status === 204 || status === 304 || status < 200) this.framing = 'none';
    else if (hasLength) this.framing = 'length';
    else if (this.req.minor === 1) {
      this.framing = 'chunked';
      head += 'transfer-encoding: chunked\r\n';
    } else this.framing = 'close';
    this.head = head + this.connectionHeader(this.framing === 'close');
  }

  /** Sends a piece of the body; false when the client's socket is full (see {@link onDrain}). */
  write(chunk: Buffer): boolean {
    if (this.framing === 'none' || chunk.length === 0) return true;
    const socket = this.conn.socket;
    const head = this.head;
    this.head = undefined;
    const prefix = this.framing === 'chunked' ? `${chunk.length.toString(16)}\r\n` : '';
    const suffix = this.framing === 'chunked' ? 2 : 0;
    if (head === undefined && prefix === '') return socket.write(chunk);
    if (chunk.length > COALESCE_BYTES) {
      // Too big to copy: the pieces are corked into one writev instead.
      socket.cork();
      socket.write((head ?? '') + prefix, 'latin1');
      let ok = socket.write(chunk);
      if (suffix) ok = socket.write('\r\n', 'latin1');
      socket.uncork();
      return ok;
    }
    const lead = (head ?? '') + prefix;
    const out = Buffer.allocUnsafe(lead.length + chunk.length + suffix);
    out.write(lead, 0, 'latin1');
    chunk.copy(out, lead.length);
    if (suffix) out.write('\r\n', lead.length + chunk.length, 'latin1');
    return socket.write(out);
  }

  /** Completes the answer. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    const tail = (this.head ?? '') + (this.framing === 'chunked' ? '0\r\n\r\n' : '');
    this.head = undefined;
    if (tail) this.conn.socket.write(tail, 'latin1');
    if (this.framing === 'close') this.keepAlive = false;
    this.conn.finished(this);
    this.closeListener?.(true);
  }

  /** A whole answer of the proxy's own, in one write. */
  send(status: number, contentType: string, body: string): void {
    if (this.ended) return;
    this.headersSent = true;
    const head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\ncontent-type: ${contentType}\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${this.connectionHeader(false)}`;
    // utf8: the body is JSON that may quote any character; the head is ASCII either way.
    this.conn.socket.write(this.req.method === 'HEAD' ? head : head + body, 'utf8');
    this.ended = true;
    this.conn.finished(this);
    this.closeListener?.(true);
  }

  /** Cuts the client's connection (an instance broke off mid-answer). */
  destroy(): void {
    this.conn.socket.destroy();
  }

  /** @internal The client went away before the answer was complete. */
  gone(): void {
    if (this.ended) return;
    this.ended = true;
    this.closeListener?.(false);
  }

  private connectionHeader(closeDelimited: boolean): string {
    if (closeDelimited || !this.keepAlive || this.draining()) {
      this.keepAlive = false;
      return 'connection: close\r\n\r\n';
    }
    return this.req.minor === 0 ? 'connection: keep-alive\r\n\r\n' : '\r\n';
  }
}
