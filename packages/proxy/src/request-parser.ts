import { BeaconError } from '@beacon/core';
import { chunkSize } from './chunked.js';

/** A client's request head, as the proxy needs it. */
export interface RequestHead {
  method: string;
  /** The request target as sent (origin form: `/path?query`). */
  target: string;
  /** 0 for HTTP/1.0, 1 for HTTP/1.1. */
  minor: 0 | 1;
  /** Every header as a flat [name, value, …] list, names as sent, values trimmed. */
  headers: string[];
  host: string | undefined;
  /** The body's length when the request has a Content-Length. */
  contentLength: number | undefined;
  /** The body is chunked (Transfer-Encoding: chunked). */
  chunked: boolean;
  /** The client lets the connection carry another request after this one. */
  keepAlive: boolean;
  /** Lower-cased names the client listed in Connection (besides close, keep-alive, upgrade): for this hop only. */
  hopNames: readonly string[] | undefined;
  /** An Upgrade request (WebSocket): the connection becomes a byte pipe after it. */
  upgrade: boolean;
  /** Expect: 100-continue. */
  expectContinue: boolean;
}

/** What the parser reports, in order: head, body pieces, end. */
export interface RequestEvents {
  onHead(head: RequestHead): void;
  /** A piece of the body, de-chunked; it is a view into the caller's buffer, valid during the call. */
  onBody(chunk: Buffer): void;
  /** The request is complete (its body, if any, all passed on). */
  onEnd(): void;
}

export interface RequestLimits {
  /** Longest request head (request line and headers), and longest trailer section. */
  maxHeadBytes: number;
  /** Most header lines in a head. */
  maxHeaders: number;
}

export const REQUEST_LIMITS: RequestLimits = { maxHeadBytes: 64 * 1024, maxHeaders: 100 };

type State = 'head' | 'length' | 'chunk-size' | 'chunk-data' | 'chunk-crlf' | 'trailers' | 'done';

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const TARGET = /^[\x21-\x7e]+$/;
/** Field values: visible characters, obs-text, space and tab; never CR, LF or other controls. */
const VALUE = /^[^\x00-\x08\x0a-\x1f\x7f]*$/;
/** Controls other than tab, and CR or LF that are not a CRLF pair. */
const FORBIDDEN_IN_HEAD = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|\r(?!\n)|(?<!\r)\n/;
const MAX_CHUNK_LINE = 4096;

function bad(message: string): BeaconError {
  return new BeaconError('invalid_argument', message, { reason: 'bad_request' });
}

/**
 * A strict, incremental HTTP/1.1 request parser (RFC 9112) for the proxy's client side. It reads
 * one request at a time: {@link feed} consumes bytes up to the end of the current request and
 * stops there, so pipelined requests wait, in order, until the caller has answered the one before.
 * It keeps no bytes itself: whatever {@link feed} did not consume (an unfinished head or chunk-size
 * line, the next request) the caller passes again with more appended.
 *
 * Refused with a `BeaconError('invalid_argument')` (answered 400, connection closed): a head over
 * the limit, too many headers, obs-fold, whitespace before a colon, control characters, a bare
 * LF, an HTTP version other than 1.0/1.1, Content-Length that is not digits or conflicts, both
 * Content-Length and Transfer-Encoding, a transfer-coding other than `chunked`, no Host on 1.1.
 *
 * @example
 * const p = new RequestParser({ onHead: (h) => console.log(h.method, h.target), onBody() {}, onEnd() {} });
 * p.feed(Buffer.from('GET / HTTP/1.1\r\nHost: a\r\n\r\n'), 0); // 27: the whole request
 */
export class RequestParser {
  private state: State = 'head';
  private left = 0;
  private trailerBytes = 0;

  constructor(
    private readonly events: RequestEvents,
    private readonly limits: RequestLimits = REQUEST_LIMITS,
  ) {}

  /** Between requests (nothing of the next one consumed yet). */
  get idle(): boolean {
    return this.state === 'head' || this.state === 'done';
  }

  /** Inside a body: the head was reported, the end not yet. */
  get inBody(): boolean {
    return this.state !== 'head' && this.state !== 'done';
  }

  /**
   * Parses `data` from `at`; returns where it stopped: at the end of a request (the next one waits
   * for another call), or where the bytes ran out mid-line. Throws on a malformed request.
   */
  feed(data: Buffer, at: number): number {
    // 'done' only until the caller comes back for the next request.
    if (this.state === 'done') this.state = 'head';
    while (at < data.length) {
      switch (this.state) {
        case 'head': {
          // Empty lines before a request line are ignored (RFC 9112 §2.2).
          while (at + 1 < data.length && data[at] === 13 && data[at + 1] === 10) at += 2;
          if (at >= data.length || (data[at] === 13 && at + 1 === data.length)) return at;
          const end = data.indexOf('\r\n\r\n', at, 'latin1');
          if (end < 0) {
            if (data.length - at > this.limits.maxHeadBytes) throw bad(`the request head is longer than ${this.limits.maxHeadBytes} bytes`);
            return at;
          }
          if (end - at > this.limits.maxHeadBytes) throw bad(`the request head is longer than ${this.limits.maxHeadBytes} bytes`);
          const head = this.head(data.toString('latin1', at, end));
          at = end + 4;
          this.events.onHead(head);
          if (head.upgrade) return this.finish(at);
          if (head.chunked) this.state = 'chunk-size';
          else if (head.contentLength) {
            this.state = 'length';
            this.left = head.contentLength;
          } else return this.finish(at);
          break;
        }
        case 'length': {
          at = this.take(data, at);
          if (this.left === 0) return this.finish(at);
          break;
        }
        case 'chunk-size': {
          const eol = data.indexOf('\r\n', at, 'latin1');
          if (eol < 0) {
            if (data.length - at > MAX_CHUNK_LINE) throw bad('a chunk-size line of the request is too long');
            return at;
          }
          const line = data.toString('latin1', at, eol);
          at = eol + 2;
          const size = chunkSize(line);
          if (Number.isNaN(size)) throw bad(`bad chunk size ${JSON.stringify(line.slice(0, 40))} in the request`);
          this.left = size;
          if (this.left === 0) {
            this.state = 'trailers';
            this.trailerBytes = 0;
          } else this.state = 'chunk-data';
          break;
        }
        case 'chunk-data': {
          at = this.take(data, at);
          if (this.left === 0) this.state = 'chunk-crlf';
          break;
        }
        case 'chunk-crlf': {
          if (data.length - at < 2) return at;
          if (data[at] !== 13 || data[at + 1] !== 10) throw bad('a chunk of the request does not end with CRLF');
          at += 2;
          this.state = 'chunk-size';
          break;
        }
        case 'trailers': {
          // Trailer fields are read and dropped: the body went on already, the instance gets none.
          const eol = data.indexOf('\r\n', at, 'latin1');
          if (eol < 0) {
            if (this.trailerBytes + data.length - at > this.limits.maxHeadBytes) throw bad('the request trailers are too long');
            return at;
          }
          const line = data.toString('latin1', at, eol);
          this.trailerBytes += eol + 2 - at;
          if (this.trailerBytes > this.limits.maxHeadBytes) throw bad('the request trailers are too long');
          at = eol + 2;
          if (line === '') return this.finish(at);
          if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+:/.test(line) || !VALUE.test(line)) throw bad(`a trailer line of the request is malformed: ${JSON.stringify(line.slice(0, 60))}`);
          break;
        }
      }
    }
    // A head with neither Content-Length nor chunked ends where it ends; others wait for more.
    return at;
  }

  private finish(at: number): number {
    this.state = 'done';
    this.events.onEnd();
    return at;
  }

  private take(data: Buffer, at: number): number {
    const n = Math.min(this.left, data.length - at);
    this.left -= n;
    if (n > 0) this.events.onBody(data.subarray(at, at + n));
    return at + n;
  }

  private head(text: string): RequestHead {
    // One pass over the whole head for what no line may hold, rather than a test per value.
    if (FORBIDDEN_IN_HEAD.test(text)) throw bad('the request head has control characters (a bare CR or LF among them)');
    const lines = text.split('\r\n');
    const requestLine = lines[0]!;
    const sp1 = requestLine.indexOf(' ');
    const sp2 = requestLine.indexOf(' ', sp1 + 1);
    const method = requestLine.slice(0, sp1);
    const target = requestLine.slice(sp1 + 1, sp2);
    const version = requestLine.slice(sp2 + 1);
    if (sp1 <= 0 || sp2 < 0 || version.includes(' ') || !TOKEN.test(method) || !TARGET.test(target)) throw bad(`the request line is malformed: ${JSON.stringify(requestLine.slice(0, 80))}`);
    if (version !== 'HTTP/1.1' && version !== 'HTTP/1.0') throw bad(`HTTP version ${JSON.stringify(version.slice(0, 20))} is not supported (HTTP/1.0 or HTTP/1.1)`);
    if (lines.length - 1 > this.limits.maxHeaders) throw bad(`the request has more than ${this.limits.maxHeaders} headers`);
    const minor = version === 'HTTP/1.1' ? 1 : 0;
    const headers: string[] = [];
    let host: string | undefined;
    let contentLength: number | undefined;
    let te: string | undefined;
    let connection: string | undefined;
    let upgrade = false;
    let expectContinue = false;
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i]!;
      const c0 = line.charCodeAt(0);
      if (c0 === 32 || c0 === 9) throw bad('obsolete line folding (a header line starting with whitespace) is not accepted');
      const colon = line.indexOf(':');
      const name = colon > 0 ? line.slice(0, colon) : '';
      if (!TOKEN.test(name)) throw bad(`a header line is malformed: ${JSON.stringify(line.slice(0, 60))}`);
      const value = line.slice(colon + 1).trim();
      headers.push(name, value);
      switch (name.length) {
        case 4:
          if (name.toLowerCase() === 'host') {
            if (host !== undefined) throw bad('the request has more than one Host header');
            host = value;
          }
          break;
        case 6:
          if (name.toLowerCase() === 'expect') {
            if (value.toLowerCase() !== '100-continue') throw bad(`Expect: ${JSON.stringify(value.slice(0, 40))} is not supported (only 100-continue)`);
            expectContinue = true;
          }
          break;
        case 7:
          if (name.toLowerCase() === 'upgrade') upgrade = true;
          break;
        case 10:
          if (name.toLowerCase() === 'connection') connection = connection === undefined ? value.toLowerCase() : `${connection},${value.toLowerCase()}`;
          break;
        case 14:
          if (name.toLowerCase() === 'content-length') {
            const n = /^\d{1,15}$/.test(value) ? Number(value) : NaN;
            if (Number.isNaN(n)) throw bad(`Content-Length ${JSON.stringify(value.slice(0, 40))} is not a number`);
            if (contentLength !== undefined && contentLength !== n) throw bad('the request has conflicting Content-Length headers');
            contentLength = n;
          }
          break;
        case 17:
          if (name.toLowerCase() === 'transfer-encoding') te = te === undefined ? value.toLowerCase() : `${te},${value.toLowerCase()}`;
          break;
      }
    }
    if (minor === 1 && host === undefined) throw bad('an HTTP/1.1 request needs a Host header');
    let chunked = false;
    if (te !== undefined) {
      if (contentLength !== undefined) throw bad('the request has both Content-Length and Transfer-Encoding');
      if (minor === 0) throw bad('Transfer-Encoding is not accepted on an HTTP/1.0 request');
      if (te.trim() !== 'chunked') throw bad(`Transfer-Encoding ${JSON.stringify(te.slice(0, 40))} is not supported (only chunked)`);
      chunked = true;
    }
    let close = false;
    let keepAliveToken = false;
    let upgradeToken = false;
    let hopNames: string[] | undefined;
    if (connection !== undefined) {
      for (const raw of connection.split(',')) {
        const t = raw.trim();
        if (t === 'close') close = true;
        else if (t === 'keep-alive') keepAliveToken = true;
        else if (t === 'upgrade') upgradeToken = true;
        else if (t !== '') (hopNames ??= []).push(t);
      }
    }
    const keepAlive = !close && (minor === 1 || keepAliveToken);
    return { method, target, minor, headers, host, contentLength, chunked, keepAlive, hopNames, upgrade: upgrade && upgradeToken, expectContinue };
  }
}
