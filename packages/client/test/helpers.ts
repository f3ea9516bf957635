import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import { startServer, type RunningServer } from '@beacon/server';

/** An in-memory Beacon server on loopback (port 0: a free one; or a given port, to restart "the same" server). */
export async function beaconServer(port = 0): Promise<RunningServer> {
  return startServer({ dev: true, httpAddr: `127.0.0.1:${port}`, nodeName: 'client-test' });
}

/** Plain HTTP to Beacon's API, for arranging state in tests. */
export async function api<T = any>(url: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
  const res = await fetch(url + path, {
    method,
    headers: body !== undefined ? { 'content-type': 'application/json' } : {},
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
}

/** Polls `cond` (real time, bounded) — e2e tests wait for the system, they never assert on timing. */
export async function until(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export type Behaviour = (req: IncomingMessage, res: ServerResponse, backend: Backend) => void | Promise<void>;

/** A real HTTP backend on 127.0.0.1 whose behaviour tests can change, and which can be killed like a crashed process. */
export class Backend {
  hits = 0;
  readonly sockets = new Set<Socket>();
  behaviour: Behaviour;
  private server!: Server;
  port = 0;
  alive = false;

  constructor(
    readonly name: string,
    behaviour?: Behaviour,
  ) {
    this.behaviour = behaviour ?? ((_req, res) => void res.end(this.name));
  }

  async start(port = 0): Promise<this> {
    this.server = createServer((req, res) => {
      this.hits++;
      // Drain the request body before answering so a keep-alive connection stays usable.
      req.resume();
      req.on('end', () => void this.behaviour(req, res, this));
    });
    this.server.keepAliveTimeout = 30_000;
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((r) => this.server.listen(port, '127.0.0.1', r));
    this.port = (this.server.address() as AddressInfo).port;
    this.alive = true;
    return this;
  }

  /** Crash: stop listening and reset every open connection (requests in flight fail). */
  async kill(): Promise<void> {
    if (!this.alive) return;
    this.alive = false;
    const closed = new Promise<void>((r) => this.server.close(() => r()));
    for (const s of this.sockets) s.resetAndDestroy();
    await closed;
  }

  /** Graceful stop: finish requests in flight, then close. */
  async stop(): Promise<void> {
    if (!this.alive) return;
    this.alive = false;
    const closed = new Promise<void>((r) => this.server.close(() => r()));
    this.server.closeIdleConnections();
    await closed;
  }
}

/** Starts `n` backends named `${prefix}-1…n`. */
export async function backends(prefix: string, n: number, behaviour?: Behaviour): Promise<Backend[]> {
  return Promise.all(Array.from({ length: n }, (_, k) => new Backend(`${prefix}-${k + 1}`, behaviour).start()));
}

/** Registers a backend (no lease, so tests control its lifetime). */
export async function registerBackend(beaconUrl: string, service: string, b: Backend, extra: Record<string, unknown> = {}): Promise<void> {
  const r = await api(beaconUrl, 'PUT', '/api/v1/instances', { id: b.name, service, address: '127.0.0.1', port: b.port, ...extra });
  if (r.status !== 200) throw new Error(`register ${b.name}: ${r.status} ${JSON.stringify(r.body)}`);
}

/** The URL of a loopback port nobody listens on (free a moment ago): connections are refused. */
export async function refusingUrl(): Promise<string> {
  const s = createTcpServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return `http://127.0.0.1:${port}`;
}

/** A loopback listener that accepts connections and never answers, like a hung server. */
export async function silentServer(): Promise<{ url: string; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const s = createTcpServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(s.address() as AddressInfo).port}`,
    close: async () => {
      const closed = new Promise((r) => s.close(r));
      for (const sock of sockets) sock.destroy();
      await closed;
    },
  };
}
