import { describe, expect, it } from 'vitest';
import { RequestParser, type RequestHead } from './request-parser.js';

/** Feeds `parts` one at a time the way a connection does (unconsumed bytes carried over) and records what the parser reports. */
function run(parts: (string | Buffer)[], limits?: { maxHeadBytes: number; maxHeaders: number }) {
  const heads: RequestHead[] = [];
  const bodies: string[] = [];
  let ends = 0;
  const p = new RequestParser(
    {
      onHead: (h) => (heads.push(h), bodies.push('')),
      onBody: (c) => (bodies[bodies.length - 1] += c.toString('latin1')),
      onEnd: () => ends++,
    },
    limits,
  );
  let pending = Buffer.alloc(0);
  for (const part of parts) {
    pending = Buffer.concat([pending, Buffer.from(part)]);
    // Like the connection: keep feeding while the parser makes progress (it stops after each request).
    for (;;) {
      const at = p.feed(pending, 0);
      pending = pending.subarray(at);
      if (at === 0 || pending.length === 0) break;
    }
  }
  return { heads, bodies, ends, rest: pending.toString('latin1') };
}

const bad = (text: string, message: RegExp) => expect(() => run([text])).toThrow(message);

describe('RequestParser', () => {
  it('parses a head split at every byte, with its headers as sent', () => {
    const text = 'GET /a?b=1 HTTP/1.1\r\nHost: shop:80\r\nX-Canary:  true \r\nCookie: a=1\r\n\r\n';
    const { heads, ends } = run([...text]);
    expect(ends).toBe(1);
    expect(heads[0]).toMatchObject({ method: 'GET', target: '/a?b=1', minor: 1, host: 'shop:80', keepAlive: true, chunked: false, contentLength: undefined, upgrade: false });
    expect(heads[0]!.headers).toEqual(['Host', 'shop:80', 'X-Canary', 'true', 'Cookie', 'a=1']);
  });

  it('reads Content-Length and chunked bodies across chunks, and stops after each request (pipelining)', () => {
    const a = 'POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world';
    const b = 'PUT /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer-A: x\r\n\r\n';
    const c = 'GET /last HTTP/1.1\r\nHost: h\r\n\r\n';
    const all = a + b + c;
    for (const size of [1, 3, 7, all.length]) {
      const parts: string[] = [];
      for (let i = 0; i < all.length; i += size) parts.push(all.slice(i, i + size));
      const r = run(parts);
      expect(r.heads.map((h) => h.target)).toEqual(['/p', '/c', '/last']);
      expect(r.bodies).toEqual(['hello world', 'hello world', '']);
      expect(r.ends).toBe(3);
      expect(r.heads[1]!.chunked).toBe(true);
      expect(r.rest).toBe('');
    }
  });

  it('stops at the end of each request so the next waits for its turn', () => {
    const p = new RequestParser({ onHead() {}, onBody() {}, onEnd() {} });
    const two = Buffer.from('GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n');
    const at = p.feed(two, 0);
    expect(two.toString('latin1', at)).toBe('GET /2 HTTP/1.1\r\nHost: h\r\n\r\n');
    expect(p.feed(two, at)).toBe(two.length);
  });

  it('keeps HTTP/1.0 and Connection semantics: close, keep-alive, hop-by-hop names, upgrade, 100-continue', () => {
    expect(run(['GET / HTTP/1.0\r\n\r\n']).heads[0]).toMatchObject({ minor: 0, keepAlive: false, host: undefined });
    expect(run(['GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n']).heads[0]!.keepAlive).toBe(true);
    expect(run(['GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, close\r\n\r\n']).heads[0]!.keepAlive).toBe(false);
    expect(run(['GET / HTTP/1.1\r\nHost: h\r\nConnection: X-Secret, keep-alive\r\nX-Secret: 1\r\n\r\n']).heads[0]!.hopNames).toEqual(['x-secret']);
    expect(run(['GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nframe']).heads[0]!.upgrade).toBe(true);
    expect(run(['GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n']).heads[0]!.upgrade).toBe(false);
    expect(run(['PUT / HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\nx']).heads[0]!.expectContinue).toBe(true);
    // Empty lines before a request are ignored.
    expect(run(['\r\n\r\nGET /x HTTP/1.1\r\nHost: h\r\n\r\n']).heads[0]!.target).toBe('/x');
  });

  it('refuses smuggling and malformed input with a clear message', () => {
    bad('POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n', /both Content-Length and Transfer-Encoding/);
    bad('POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n', /conflicting Content-Length/);
    bad('POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +3\r\n\r\n', /Content-Length "\+3" is not a number/);
    bad('POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n', /only chunked/);
    bad('POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n', /HTTP\/1\.0/);
    bad('GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n  folded\r\n\r\n', /obsolete line folding/);
    bad('GET / HTTP/1.1\r\nHost : h\r\n\r\n', /header line is malformed/);
    bad('GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x01b\r\n\r\n', /control characters/);
    bad('GET / HTTP/1.1\r\nHost: h\nX-A: 1\r\n\r\n', /control characters/);
    bad('GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n', /more than one Host/);
    bad('GET / HTTP/1.1\r\n\r\n', /needs a Host header/);
    bad('GET / HTTP/2.0\r\nHost: h\r\n\r\n', /HTTP version "HTTP\/2.0" is not supported/);
    bad('GET /a b HTTP/1.1\r\nHost: h\r\n\r\n', /request line is malformed/);
    bad('G(T / HTTP/1.1\r\nHost: h\r\n\r\n', /request line is malformed/);
    bad('GET / HTTP/1.1\r\nHost: h\r\nExpect: magic\r\n\r\n', /only 100-continue/);
    bad('POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', /bad chunk size/);
    bad('POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n', /does not end with CRLF/);
  });

  it('limits the head size and the header count, also while the head is still arriving', () => {
    const limits = { maxHeadBytes: 100, maxHeaders: 3 };
    expect(() => run(['GET / HTTP/1.1\r\nHost: h\r\nX-Big: ' + 'a'.repeat(200)], limits)).toThrow(/longer than 100 bytes/);
    expect(() => run(['GET / HTTP/1.1\r\nHost: h\r\nX-Big: ' + 'a'.repeat(200) + '\r\n\r\n'], limits)).toThrow(/longer than 100 bytes/);
    expect(() => run(['GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n'], limits)).toThrow(/more than 3 headers/);
    expect(run(['GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n'], limits).heads).toHaveLength(1);
  });
});
