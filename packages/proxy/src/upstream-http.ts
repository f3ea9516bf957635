import { connect as netConnect, type Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { systemClock, type Clock, type Timer } from '@beacon/core';
import { chunkSize } from './chunked.js';

/**
 * Headers that belong to one connection, never forwarded (RFC 9110 §7.6.1), plus `expect`: the
 * proxy's own server has already answered `100-continue`.
 */
export const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-authorization', 'expect']);

/** One request to an instance. */
export interface UpstreamRequest {
  method: string;
  path: string;
  /** A flat [name, value, …] list, without hop-by-hop headers. */
  headers: readonly string[];
  /**
   * The body: null; a whole Buffer (its content-length among `headers`), sent with the head in one
   * write and again on a retry; or a stream, sent as it comes.
   */
  body: Buffer | Readable | null;
  /** A streamed body has no content-length among `headers`: send it chunked. */
  chunked: boolean;
}

/** What an exchange reports, in order: headers, data…, then complete; or error at any point. */
export interface ExchangeHandler {
  /** The answer's head, hop-by-hop headers removed. The body waits for {@link Exchange.resume}. */
  onHeaders(status: number, statusText: string, headers: string[]): void;
  /** A piece of the (de-chunked) body; false pauses the exchange until {@link Exchange.resume}. */
  onData(chunk: Buffer): boolean;
  onComplete(): void;
  /** The exchange failed: `code` says how (ECONNREFUSED, ECONNRESET, …), for classifyError. */
  onError(err: Error): void;
}

export interface Exchange {
  /** Ends the exchange now (its connection is closed) and reports `err` through onError. */
  abort(err: Error): void;
  /** Lets the body flow (after onHeaders, or after onData returned false). */
  resume(): void;
}

export interface HttpPoolOptions {
  /** How long an idle connection is kept (shortened to what the instance announces in Keep-Alive). */
  keepAliveMs: number;
  /** Longest accepted answer head (status line and headers). */
  maxHeadBytes: number;
  /** How long connecting may take. */
  connectTimeoutMs: number;
  /** Body bytes held back (while the answer waits to be relayed) before reading pauses. */
  maxHeldBytes: number;
  clock: Clock;
}

const DEFAULTS: HttpPoolOptions = { keepAliveMs: 10_000, maxHeadBytes: 64 * 1024, connectTimeoutMs: 10_000, maxHeldBytes: 64 * 1024, clock: systemClock };
/** How often idle connections past their keep-alive time are closed. */
const SWEEP_MS = 1_000;
const CRLF = Buffer.from('\r\n');
const HEAD_END = Buffer.from('\r\n\r\n');
const LAST_CHUNK = '0\r\n\r\n';
const MAX_CHUNK_LINE = 1024;
/** Lengths of the hop-by-hop names and of content-length: only such names need a case-insensitive look. */
const HOP_OR_FRAMING_LENGTHS = new Set([...HOP_BY_HOP, 'content-length'].map((n) => n.length));

/** The status of an `HTTP/1.x NNN[ reason]` line, read by character (a regex here cost more than the rest of the head); -1 if it is not one. */
function statusOf(line: string): number {
  if (line.length < 12 || !line.startsWith('HTTP/1.') || line.charCodeAt(8) !== 32 || (line.length > 12 && line.charCodeAt(12) !== 32)) return -1;
  const minor = line.charCodeAt(7);
  if (minor !== 0x30 && minor !== 0x31) return -1;
  let status = 0;
  for (let i = 9; i < 12; i++) {
    const d = line.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9) return -1;
    status = status * 10 + d;
  }
  return status;
}

function failure(message: string, code: string): Error {
  return Object.assign(new Error(message), { code });
}

/**
 * HTTP/1.1 keep-alive connections to one instance, one request at a time on each, written and
 * parsed here on plain sockets. It replaced undici's `Pool.dispatch`, whose per-request machinery
 * cost about a quarter of the proxy's CPU per request (docs/proxy.md, Performance): a request
 * is one write of its head, an answer is parsed with a few `indexOf`s, and a body with a length
 * is passed on without copying. Answers are framed by RFC 9112 §6.3: no body for HEAD, 1xx, 204
 * and 304; chunked; content-length; or until the instance closes.
 *
 * @example
 * const pool = new HttpPool('127.0.0.1', 8080);
 * pool.request({ method: 'GET', path: '/', headers: ['host', 'payments'], body: null, chunked: false }, handler);
 */
export class HttpPool {
  private readonly idle: Connection[] = [];
  private readonly all = new Set<Connection>();
  private readonly options: HttpPoolOptions;
  private closed = false;
  private sweeper: Timer | undefined;

  constructor(
    readonly host: string,
    readonly port: number,
    options: Partial<HttpPoolOptions> = {},
  ) {
    this.options = { ...DEFAULTS, ...options };
  }

  /** Sends `req` on an idle connection, or a new one. */
  request(req: UpstreamRequest, handler: ExchangeHandler): Exchange {
    let conn: Connection | undefined;
    const now = this.options.clock.now();
    while ((conn = this.idle.pop()) && !conn.reusable(now));
    if (!conn) {
      conn = new Connection(this, this.options);
      this.all.add(conn);
    }
    return conn.start(req, handler, now);
  }

  /** Idle connections, for tests and the admin view. */
  get idleCount(): number {
    return this.idle.length;
  }

  /** Closes every connection, idle or busy. */
  close(): void {
    this.closed = true;
    this.sweeper?.cancel();
    for (const c of this.all) c.destroy();
    this.all.clear();
    this.idle.length = 0;
  }

  /** @internal A connection finished an exchange and can take another. */
  release(conn: Connection): void {
    if (this.closed) return conn.destroy();
    this.idle.push(conn);
    // One timer per pool closes expired idle connections, rather than a socket timeout re-armed per request.
    this.sweeper ??= this.options.clock.setTimeout(() => this.sweep(), SWEEP_MS);
  }

  private sweep(): void {
    this.sweeper = undefined;
    const now = this.options.clock.now();
    for (let i = this.idle.length - 1; i >= 0; i--) if (!this.idle[i]!.reusable(now)) this.idle.splice(i, 1);
    if (this.idle.length) this.sweeper = this.options.clock.setTimeout(() => this.sweep(), SWEEP_MS);
  }

  /** @internal A connection closed. */
  forget(conn: Connection): void {
    this.all.delete(conn);
    const i = this.idle.indexOf(conn);
    if (i >= 0) this.idle.splice(i, 1);
  }
}

type ParseState = 'head' | 'length' | 'chunk-size' | 'chunk-data' | 'chunk-crlf' | 'trailers' | 'until-close';

/** One socket to the instance, and the exchange it carries now. */
class Connection {
  private readonly socket: Socket;
  private connected = false;
  /** Counts exchanges, so that a finished one's abort or resume cannot touch the next. */
  private generation = 0;
  private handler: ExchangeHandler | undefined;
  private method = 'GET';
  private state: ParseState = 'head';
  /** Bytes of a head, chunk-size line or trailer not yet complete. */
  private partial: Buffer | undefined;
  /** Body bytes left in this content-length body or chunk. */
  private left = 0;
  /** Body bytes received while the handler holds the body back. */
  private held: Buffer[] = [];
  private heldBytes = 0;
  private paused = false;
  /** Inside {@link parse}: a handler that resumes from a callback lets that parse go on instead. */
  private parsing = false;
  private keepAlive = true;
  private bodySent = true;
  private bodyChunked = false;
  private idleUntil = 0;
  private startedAt = 0;
  private body: Readable | null = null;
  private readonly onBodyData = (c: Buffer) => this.sendBody(c);
  private readonly onBodyEnd = () => this.endBody();
  private readonly onBodyError = (err: Error) => this.fail(failure(`the client's request body failed: ${err.message}`, 'ECONNABORTED'));
  private readonly onDrain = () => this.body?.resume();

  constructor(
    private readonly pool: HttpPool,
    private readonly options: HttpPoolOptions,
  ) {
    const host = pool.host;
    this.socket = netConnect({ host, port: pool.port, noDelay: true });
    // UND_ERR_CONNECT_TIMEOUT: the code classifyError counts as a connect failure (undici's name for it).
    const connectTimer = options.clock.setTimeout(() => this.fail(failure(`connecting to ${host}:${pool.port} took longer than ${options.connectTimeoutMs} ms`, 'UND_ERR_CONNECT_TIMEOUT')), options.connectTimeoutMs);
    this.socket.once('connect', () => {
      this.connected = true;
      connectTimer.cancel();
    });
    this.socket.on('data', (d: Buffer) => this.receive(d));
    this.socket.on('end', () => this.ended());
    this.socket.on('error', (err) => this.fail(err));
    this.socket.on('close', () => {
      connectTimer.cancel();
      this.pool.forget(this);
      this.fail(failure('the instance closed the connection before answering', 'ECONNRESET'));
    });
  }

  reusable(now: number): boolean {
    if (this.socket.destroyed || now >= this.idleUntil) {
      this.socket.destroy();
      return false;
    }
    return true;
  }

  /** Sends `req`; `now` is the clock's time, taken once per request by the pool. */
  start(req: UpstreamRequest, handler: ExchangeHandler, now: number): Exchange {
    this.handler = handler;
    this.startedAt = now;
    const generation = ++this.generation;
    this.method = req.method;
    this.state = 'head';
    this.partial = undefined;
    this.held = [];
    this.heldBytes = 0;
    this.paused = false;
    this.keepAlive = true;
    const h = req.headers;
    let head = `${req.method} ${req.path} HTTP/1.1\r\n`;
    for (let i = 0; i < h.length; i += 2) head += `${h[i]}: ${h[i + 1]}\r\n`;
    const body = req.body;
    if (Buffer.isBuffer(body)) {
      // Head and body in one write (a socket still connecting queues writes until it is connected).
      const out = Buffer.allocUnsafe(head.length + 2 + body.length);
      out.write(head + '\r\n', 0, 'latin1');
      body.copy(out, head.length + 2);
      this.socket.write(out);
      this.body = null;
      this.bodySent = true;
      this.bodyChunked = false;
    } else {
      head += body && req.chunked ? 'transfer-encoding: chunked\r\n\r\n' : '\r\n';
      this.socket.write(head, 'latin1');
      this.body = body;
      this.bodySent = !body;
      this.bodyChunked = !!body && req.chunked;
    }
    if (body && !Buffer.isBuffer(body)) {
      body.on('data', this.onBodyData);
      body.once('end', this.onBodyEnd);
      body.once('error', this.onBodyError);
      this.socket.on('drain', this.onDrain);
      body.resume();
    }
    return {
      abort: (err) => {
        if (generation === this.generation && this.handler) this.fail(err);
      },
      resume: () => {
        if (generation === this.generation) this.resume();
      },
    };
  }

  private sendBody(chunk: Buffer): void {
    if (!this.body || chunk.length === 0) return;
    const ok = this.bodyChunked ? this.socket.write(`${chunk.length.toString(16)}\r\n`) && this.socket.write(chunk) && this.socket.write(CRLF) : this.socket.write(chunk);
    if (!ok) this.body.pause();
  }

  private endBody(): void {
    if (this.bodyChunked) this.socket.write(LAST_CHUNK);
    this.bodySent = true;
    this.detachBody();
  }

  private detachBody(): void {
    const body = this.body;
    if (!body) return;
    body.off('data', this.onBodyData);
    body.off('end', this.onBodyEnd);
    body.off('error', this.onBodyError);
    this.socket.off('drain', this.onDrain);
    this.body = null;
  }

  private resume(): void {
    if (!this.handler || !this.paused) return;
    this.paused = false;
    if (this.parsing) return;
    const held = this.held;
    this.held = [];
    this.heldBytes = 0;
    for (let i = 0; i < held.length; i++) {
      this.parse(held[i]!);
      if (this.paused) {
        // The handler paused again: keep the rest for the next resume.
        this.held.push(...held.slice(i + 1));
        return;
      }
    }
    // A body-less answer completes once the handler has taken it.
    if (this.handler && this.state === 'length' && this.left === 0) return this.complete(false);
    if (this.handler && this.socket.isPaused()) this.socket.resume();
  }

  destroy(): void {
    this.socket.destroy();
  }

  private receive(data: Buffer): void {
    if (!this.handler) {
      // Bytes nobody asked for: the connection is out of step, never reuse it.
      this.socket.destroy();
      return;
    }
    if (this.paused) return this.hold(data);
    this.parse(data);
  }

  /** Feeds bytes through the answer's framing, reporting to the handler. */
  private parse(data: Buffer): void {
    this.parsing = true;
    try {
      this.parseFrom(data);
    } finally {
      this.parsing = false;
    }
  }

  private parseFrom(data: Buffer): void {
    let at = 0;
    // A body-less answer whose handler took it at once (resumed from onHeaders) completes here.
    while (at < data.length || this.state === 'head' || (this.state === 'length' && this.left === 0 && this.handler)) {
      if (this.paused) {
        if (at < data.length) this.hold(data.subarray(at));
        return;
      }
      switch (this.state) {
        case 'head': {
          const buf = this.append(data.subarray(at));
          const end = buf.indexOf(HEAD_END);
          if (end < 0) {
            if (buf.length > this.options.maxHeadBytes) this.fail(failure(`the answer's head is longer than ${this.options.maxHeadBytes} bytes`, 'HPE_HEADER_OVERFLOW'));
            else this.partial = buf;
            return;
          }
          if (end > this.options.maxHeadBytes) return this.fail(failure(`the answer's head is longer than ${this.options.maxHeadBytes} bytes`, 'HPE_HEADER_OVERFLOW'));
          this.partial = undefined;
          if (!this.head(buf.toString('latin1', 0, end))) return;
          data = buf;
          at = end + 4;
          // After a 1xx the real answer follows; after the answer's head the handler holds the body.
          continue;
        }
        case 'length': {
          at = this.take(data, at);
          if (this.left === 0) return this.complete(at < data.length);
          break;
        }
        case 'until-close': {
          if (!this.handler!.onData(at === 0 ? data : data.subarray(at))) this.paused = true;
          at = data.length;
          break;
        }
        case 'chunk-size':
        case 'trailers': {
          const buf = this.append(data.subarray(at));
          const eol = buf.indexOf(CRLF);
          if (eol < 0) {
            if (buf.length > MAX_CHUNK_LINE) return this.fail(failure('a chunk-size or trailer line of the answer is too long', 'HPE_INVALID_CHUNK_SIZE'));
            this.partial = buf;
            return;
          }
          this.partial = undefined;
          const line = buf.toString('latin1', 0, eol);
          data = buf;
          at = eol + 2;
          if (this.state === 'trailers') {
            // Trailers are dropped (the body went out already); the empty line ends the answer.
            if (line === '') return this.complete(at < data.length);
            continue;
          }
          const size = chunkSize(line);
          if (Number.isNaN(size)) return this.fail(failure(`bad chunk size ${JSON.stringify(line.slice(0, 40))} in the answer`, 'HPE_INVALID_CHUNK_SIZE'));
          this.left = size;
          this.state = this.left === 0 ? 'trailers' : 'chunk-data';
          break;
        }
        case 'chunk-data': {
          at = this.take(data, at);
          if (this.left === 0) this.state = 'chunk-crlf';
          break;
        }
        case 'chunk-crlf': {
          const buf = this.append(data.subarray(at));
          if (buf.length < 2) {
            this.partial = buf;
            return;
          }
          this.partial = undefined;
          if (buf[0] !== 13 || buf[1] !== 10) return this.fail(failure('a chunk of the answer does not end with CRLF', 'HPE_INVALID_CHUNK_SIZE'));
          data = buf;
          at = 2;
          this.state = 'chunk-size';
          break;
        }
      }
    }
  }

  /** Passes up to `left` body bytes of `data`, from `at`, to the handler; returns where it stopped. */
  private take(data: Buffer, at: number): number {
    const n = Math.min(this.left, data.length - at);
    this.left -= n;
    if (n > 0 && !this.handler!.onData(data.subarray(at, at + n))) this.paused = true;
    return at + n;
  }

  /**
   * Keeps body bytes while the handler holds the body. An answer usually arrives whole and waits
   * only until the relay takes it, so reading pauses (two syscalls) only when a lot piles up.
   */
  private hold(data: Buffer): void {
    this.held.push(data);
    this.heldBytes += data.length;
    if (this.heldBytes > this.options.maxHeldBytes) this.socket.pause();
  }

  /** `this.partial` followed by `more`, without copying when there is no partial. */
  private append(more: Buffer): Buffer {
    const p = this.partial;
    this.partial = undefined;
    return p ? Buffer.concat([p, more]) : more;
  }

  /** Parses an answer's head and reports it; false when the exchange failed on it. */
  private head(text: string): boolean {
    const lines = text.split('\r\n');
    const first = lines[0]!;
    const status = statusOf(first);
    if (status < 0) {
      this.fail(failure(`the answer does not start with an HTTP/1.x status line: ${JSON.stringify(first.slice(0, 60))}`, 'HPE_INVALID_CONSTANT'));
      return false;
    }
    const headers: string[] = [];
    let length: number | undefined;
    let chunked = false;
    let connection = '';
    let keepAliveMs = this.options.keepAliveMs;
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i]!;
      const colon = line.indexOf(':');
      if (colon <= 0 || line.charCodeAt(0) === 32 || line.charCodeAt(0) === 9) {
        this.fail(failure(`a header line of the answer is malformed: ${JSON.stringify(line.slice(0, 60))}`, 'HPE_INVALID_HEADER_TOKEN'));
        return false;
      }
      const name = line.slice(0, colon);
      const value = line.slice(colon + 1).trim();
      // Only names as long as a header of interest are lower-cased (most answer headers are not).
      const lower = HOP_OR_FRAMING_LENGTHS.has(name.length) ? name.toLowerCase() : '';
      switch (lower) {
        case 'content-length': {
          const n = /^\d{1,15}$/.test(value) ? Number(value) : NaN;
          if (Number.isNaN(n) || (length !== undefined && length !== n)) {
            this.fail(failure(`the answer's content-length ${JSON.stringify(value)} is not valid`, 'HPE_INVALID_CONTENT_LENGTH'));
            return false;
          }
          length = n;
          break;
        }
        case 'transfer-encoding':
          chunked = /(?:^|,)\s*chunked\s*$/i.test(value);
          break;
        case 'connection':
          connection = value.toLowerCase();
          break;
        case 'keep-alive': {
          const t = /timeout=(\d+)/i.exec(value);
          // Give up on the connection a second before the instance would, as undici does.
          if (t) keepAliveMs = Math.min(keepAliveMs, Number(t[1]) * 1000 - 1000);
          break;
        }
      }
      if (lower === '' || !HOP_BY_HOP.has(lower)) headers.push(name, value);
    }
    if (status < 200) {
      if (status === 101) {
        this.fail(failure('the instance switched protocols on a request that did not ask to', 'HPE_INVALID_CONSTANT'));
        return false;
      }
      return true; // an interim answer (100, 103): the proxy's own server dealt with Expect already
    }
    this.keepAlive = first.charCodeAt(7) === 0x31 /* HTTP/1.1 */ ? !/(?:^|,)\s*close\s*(?:,|$)/.test(connection) : /(?:^|,)\s*keep-alive\s*(?:,|$)/.test(connection);
    // Counted from the request's start rather than read from the clock again: a little early, never late.
    this.idleUntil = this.startedAt + keepAliveMs;
    if (this.method === 'HEAD' || status === 204 || status === 304) this.state = 'length', (this.left = 0);
    else if (chunked) this.state = 'chunk-size';
    else if (length !== undefined) this.state = 'length', (this.left = length);
    else {
      this.state = 'until-close';
      this.keepAlive = false;
    }
    this.paused = true;
    this.handler!.onHeaders(status, first.length > 13 ? first.slice(13) : '', headers);
    return true;
  }

  /** The answer is complete; `extra`: bytes followed it, which a one-at-a-time connection never gets. */
  private complete(extra: boolean): void {
    const handler = this.handler!;
    this.handler = undefined;
    // No keep-alive time left (timeout=1 leaves none): closed now; one that expires later is caught
    // when next taken from the pool (reusable()).
    const reuse = this.keepAlive && this.bodySent && !extra && this.idleUntil > this.startedAt;
    this.detachBody();
    handler.onComplete();
    if (reuse) {
      if (this.socket.isPaused()) this.socket.resume();
      this.pool.release(this);
    } else this.socket.destroy();
  }

  private ended(): void {
    const handler = this.handler;
    if (handler && this.state === 'until-close') {
      this.handler = undefined;
      this.detachBody();
      handler.onComplete();
    }
    this.socket.destroy();
  }

  private fail(err: Error): void {
    const handler = this.handler;
    this.handler = undefined;
    this.detachBody();
    this.socket.destroy();
    handler?.onError(err);
  }
}
