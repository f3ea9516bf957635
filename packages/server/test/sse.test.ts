import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SseEvent } from '@beacon/client';
import type { RunningServer } from '../src/server.js';
import { aclServer, api, bearer, devServer, openStream, until, type AclTestServer } from './helpers.js';

/** A watch over a raw socket: every byte the server sent, as it came. */
function rawWatch(server: RunningServer, path: string, version: '1.0' | '1.1') {
  const url = new URL(server.httpUrl);
  const sock = net.connect({ host: url.hostname, port: Number(url.port) });
  const w = { bytes: Buffer.alloc(0), sock };
  sock.on('data', (b: Buffer) => (w.bytes = Buffer.concat([w.bytes, b])));
  sock.write(`GET ${path} HTTP/${version}\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n`);
  return w;
}

/** Head and body of a response; the body de-chunked strictly (every size matches, no early last chunk). */
function parseResponse(bytes: Buffer): { head: string; body: string; chunks: number } {
  const text = bytes.toString('latin1');
  const end = text.indexOf('\r\n\r\n');
  const head = text.slice(0, end);
  let rest = text.slice(end + 4);
  if (!/\r\ntransfer-encoding: chunked/i.test(head)) return { head, body: rest, chunks: 0 };
  let body = '';
  let chunks = 0;
  while (rest.length > 0) {
    const nl = rest.indexOf('\r\n');
    const size = Number.parseInt(rest.slice(0, nl), 16);
    expect(size, 'a chunk of size 0 ends the body').toBeGreaterThan(0);
    expect(rest.slice(nl + 2 + size, nl + 4 + size)).toBe('\r\n');
    body += rest.slice(nl + 2, nl + 2 + size);
    rest = rest.slice(nl + 4 + size);
    chunks++;
  }
  return { head, body, chunks };
}

const events = (body: string) => body.split('\n\n').filter((b) => b.startsWith('event: '));

describe('SSE streams written from one feed', () => {
  let server: RunningServer;
  beforeAll(async () => {
    server = await devServer();
  });
  afterAll(() => server.close());

  it('gives every stream of a service the same chunks, frames HTTP/1.1 chunks exactly, and an HTTP/1.0 client the bare frames', async () => {
    await api(server, 'PUT', '/api/v1/instances', { id: 'f-0', service: 'fan', address: '127.0.2.1', port: 1 });
    const same = [0, 1, 2].map(() => rawWatch(server, '/api/v1/watch?service=fan', '1.1'));
    const everything = rawWatch(server, '/api/v1/watch', '1.1');
    const old = rawWatch(server, '/api/v1/watch?service=fan', '1.0');
    const all = [...same, everything, old];
    try {
      await until(async () => all.every((w) => w.bytes.includes('event: reset')), (ok) => ok);
      // Writes sent together: those applied in one turn reach each stream in one write.
      await Promise.all([1, 2, 3, 4].map((i) => api(server, 'PUT', '/api/v1/instances', { id: `f-${i}`, service: 'fan', address: `127.0.2.${i + 1}`, port: 1 })));
      await api(server, 'PUT', '/api/v1/instances', { id: 'other-1', service: 'other', address: '127.0.3.1', port: 1 });
      await until(async () => all.every((w) => events(parseResponse(w.bytes).body).length >= (w === everything ? 6 : 5)), (ok) => ok);

      const parsed = all.map((w) => parseResponse(w.bytes));
      for (const p of parsed.slice(0, 4)) expect(p.head).toMatch(/^HTTP\/1\.1 200[^]*\r\ntransfer-encoding: chunked/i);
      expect(parsed[4]!.head).toMatch(/^HTTP\/1\.1 200/);
      expect(parsed[4]!.chunks).toBe(0);
      expect(parsed[4]!.body.startsWith('retry: 1000\n\nevent: reset\n')).toBe(true);
      // Byte for byte the same events on every stream of the service, whatever the framing.
      const changes = (p: { body: string }) => events(p.body).filter((e) => e.startsWith('event: change'));
      for (const p of parsed) expect(changes(p).filter((e) => e.includes('"service":"fan"'))).toEqual(changes(parsed[0]!));
      expect(changes(parsed[0]!).map((e) => JSON.parse(e.slice(e.indexOf('data: ') + 6)).id)).toEqual(['f-1', 'f-2', 'f-3', 'f-4']);
      // Each revision's last event carries its id.
      for (const e of changes(parsed[0]!)) expect(e).toMatch(/\nid: \d+\n/);
      expect(changes(parsed[3]!).some((e) => e.includes('"service":"other"'))).toBe(true);
    } finally {
      for (const w of all) w.sock.destroy();
    }
  });
});

describe('SSE streams with --acl', () => {
  let s: AclTestServer;
  beforeAll(async () => {
    s = await aclServer();
  });
  afterAll(() => s.close());

  const open = (secret: string, signal: AbortSignal) => openStream(`${s.server.httpUrl}/api/v1/watch`, bearer(secret), signal);
  const services = (e: SseEvent): string[] => (e.event === 'reset' ? JSON.parse(e.data).instances.map((i: { service: string }) => i.service) : [JSON.parse(e.data).service]);

  it('moves the streams of a token whose rights change to what it may read now, leaves the others, and ends them when it is deleted', async () => {
    const admin = s.server.deps.aclAdmin!;
    const writer = (await s.token('service_prefix "" { policy = "write" }')).secret;
    for (const svc of ['acl-a', 'acl-b']) await api(s.server, 'PUT', '/api/v1/instances', { id: `${svc}-1`, service: svc, address: '127.0.4.1', port: 1 }, bearer(writer));
    const policy = await admin.createPolicy({ name: 'sse-moves', rules: 'service "acl-a" { policy = "read" }' });
    const token = await admin.createToken({ description: 'sse', policies: [{ id: policy.id }] });
    const other = await s.token('service "acl-a" { policy = "read" }');
    const ac = new AbortController();
    const [one, two, third] = await Promise.all([open(token.secretId!, ac.signal), open(token.secretId!, ac.signal), open(other.secret, ac.signal)]);
    try {
      await until(async () => [one, two, third].every((st) => st.events.length >= 1), (ok) => ok);
      for (const st of [one, two, third]) expect(services(st.events[0]!)).toEqual(['acl-a']);

      await admin.updatePolicy(policy.id, { name: 'sse-moves', rules: 'service_prefix "acl-" { policy = "read" }' });
      await until(async () => one.events.length >= 2 && two.events.length >= 2, (ok) => ok);
      for (const st of [one, two]) expect([st.events[1]!.event, services(st.events[1]!).sort()]).toEqual(['reset', ['acl-a', 'acl-b']]);

      await api(s.server, 'PUT', '/api/v1/instances/acl-b-1/maintenance', { reason: 'b changes' }, bearer(writer));
      await api(s.server, 'PUT', '/api/v1/instances/acl-a-1/maintenance', { reason: 'a changes' }, bearer(writer));
      await until(async () => one.events.length >= 4 && two.events.length >= 4 && third.events.length >= 2, (ok) => ok);
      for (const st of [one, two]) expect(st.events.slice(2).map(services)).toEqual([['acl-b'], ['acl-a']]);
      // The other token's stream saw neither the reset nor svc-b.
      expect(third.events.map((e) => e.event)).toEqual(['reset', 'change']);
      expect(services(third.events[1]!)).toEqual(['acl-a']);

      const started = Date.now();
      await admin.deleteToken(token.accessorId);
      await Promise.all([one.ended, two.ended]);
      expect(Date.now() - started).toBeLessThan(1000);
    } finally {
      ac.abort();
    }
  });
});
