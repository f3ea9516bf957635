import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Server as NetServer, Socket } from 'node:net';
import { pino, type Logger } from 'pino';
import { createClient, type BeaconClient } from '@beacon/client';
import { spawnServer, type RunningProcess } from '../../cli/test/helpers.js';
import { startProxy, type ProxyConfig, type RunningProxy } from '../src/index.js';

export { spawnServer, type RunningProcess };
export { until } from '../../server/test/helpers.js';

/** Listens on a free loopback port; `close` ends every connection it accepted, then the server. */
export async function serve<S extends NetServer>(server: S): Promise<{ server: S; port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    server,
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** A real HTTP backend on a free loopback port that answers `{"by": name}` unless `handler` says otherwise. */
export function backend(name: string, handler?: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ server: Server; port: number; close(): Promise<void> }> {
  return serve(
    createServer(
    handler ??
      ((req, res) => {
        req.resume();
        const body = JSON.stringify({ by: name, path: req.url, deadline: req.headers['x-beacon-deadline-ms'] ?? null });
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
      }),
    ),
  );
}

/** Registers an instance through the API (no lease: it stays until deregistered). */
export async function register(beacon: { url: string }, service: string, port: number, extra: { tags?: string[]; meta?: Record<string, string>; id?: string } = {}): Promise<string> {
  const res = await fetch(`${beacon.url}/api/v1/instances`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ service, address: '127.0.0.1', port, ...extra }),
  });
  const body = (await res.json()) as { instance: { id: string } };
  if (!res.ok) throw new Error(`register: ${res.status} ${JSON.stringify(body)}`);
  return body.instance.id;
}

export async function apiPut(beacon: { url: string }, path: string, body: unknown): Promise<void> {
  const res = await fetch(`${beacon.url}${path}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
}

/** A proxy in this process on a real client of `beacon` (`logger` silent unless given); `close` drains it and the client. */
export async function proxyFor(beacon: { url: string }, config: ProxyConfig, logger: Logger = pino({ level: 'silent' })): Promise<{ proxy: RunningProxy; client: BeaconClient; url(i?: number): string; close(): Promise<void> }> {
  const client = createClient({ servers: [beacon.url] });
  const proxy = await startProxy(config, { source: client, clock: client.clock, random: client.random, logger });
  return {
    proxy,
    client,
    url: (i = 0) => `http://127.0.0.1:${proxy.listeners[i]!.port}`,
    async close() {
      await proxy.drain(1_000);
      await client.close();
    },
  };
}
