import type { Server as HttpServer } from 'node:http';
import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import type { Logger } from 'pino';
import type { Upstream } from '@beacon/client';
import type { Clock, Random } from '@beacon/core';
import { accessLog } from './access-log.js';
import { adminServer, routesSnapshot, type ListenerView, type RoutesSnapshot } from './admin.js';
import { parseHostPort, type ListenerConfig, type ProxyConfig } from './config.js';
import { Downstream } from './downstream.js';
import { HttpForwarder } from './http.js';
import { ProxyMetrics } from './metrics.js';
import { Pools } from './pools.js';
import { compileRoutes, type UpstreamSource } from './routes.js';
import { TcpForwarder } from './tcp.js';

export interface ProxyDeps {
  /** The SDK client (or anything that hands out upstreams): discovery, balancers, policies. */
  source: UpstreamSource;
  clock: Clock;
  random: Random;
  logger: Logger;
}

/** A started proxy. */
export interface RunningProxy {
  /** Each listener with the address it is bound to (port 0 resolved). */
  readonly listeners: readonly { listen: string; protocol: 'http' | 'tcp'; host: string; port: number }[];
  /** `http://host:port` of the admin port, if configured. */
  readonly adminUrl: string | undefined;
  readonly metrics: ProxyMetrics;
  snapshot(): RoutesSnapshot;
  /**
   * The SDK upstream a route's subset balances over: listener by index, route and subset by name
   * (`'all'` for a route without a split); undefined if there is none.
   */
  upstream(listener: number, route: string, subset?: string): Upstream | undefined;
  /**
   * Stops accepting, lets requests and connections under way finish (keep-alive connections are
   * told to close), and closes what is left after `timeoutMs`. Resolves when all is closed.
   */
  drain(timeoutMs?: number): Promise<void>;
}

interface Bound {
  view: ListenerView;
  server: NetServer;
  sockets: Set<Socket>;
  /** HTTP: requests under way; TCP: open connections. */
  active(): number;
  /** HTTP: closes keep-alive connections between requests. */
  closeIdle(): void;
}

/**
 * Starts every listener of `config` (and the admin port), routing through `deps.source`. One
 * listener failing to bind stops the others and rejects.
 *
 * @example
 * const client = createClient({ servers: ['http://127.0.0.1:8500'] });
 * const proxy = await startProxy({ listeners: [{ listen: '127.0.0.1:15001', service: 'payments' }] }, { source: client, clock: client.clock, random: client.random, logger: pino() });
 * process.once('SIGTERM', () => proxy.drain(10_000).then(() => client.close()));
 */
export async function startProxy(config: ProxyConfig, deps: ProxyDeps): Promise<RunningProxy> {
  const metrics = new ProxyMetrics();
  const log = accessLog(deps.logger, config.accessLog ?? 'info');
  const pools = new Pools({ clock: deps.clock });
  let draining = false;
  const bound: Bound[] = [];
  let admin: HttpServer | undefined;
  const closeAll = () => {
    for (const b of bound) b.server.close();
    admin?.close();
    pools.close();
  };
  try {
    for (const [i, l] of config.listeners.entries()) bound.push(await bind(l, i));
    if (config.admin) {
      admin = adminServer(metrics, () => snapshot());
      await listen(admin, config.admin);
    }
  } catch (err) {
    closeAll();
    throw err;
  }
  const snapshot = () =>
    routesSnapshot(
      bound.map((b) => b.view),
      deps.clock,
      draining,
    );

  async function bind(l: ListenerConfig, index: number): Promise<Bound> {
    const routes = compileRoutes(l, index, config.defaults ?? {}, deps.source, deps.random);
    for (const r of routes) for (const s of r.subsets) metrics.watch(r.name, s.name, s.upstream);
    const protocol = l.protocol ?? 'http';
    const sockets = new Set<Socket>();
    const track = (s: Socket) => {
      sockets.add(s);
      metrics.connectionOpened(l.listen);
      s.once('close', () => {
        sockets.delete(s);
        metrics.connectionClosed(l.listen);
      });
    };
    let server: NetServer;
    let active: () => number;
    let closeIdle = () => {};
    switch (protocol) {
      case 'http': {
        const fwd = new HttpForwarder({ listener: l.listen, routes, clock: deps.clock, metrics, log, pools });
        const down = new Downstream(fwd, { clock: deps.clock, draining: () => draining });
        server = createNetServer({ noDelay: true, allowHalfOpen: true }, (s) => {
          track(s);
          down.accept(s);
        });
        active = () => fwd.active;
        closeIdle = () => down.closeIdle();
        break;
      }
      case 'tcp': {
        const fwd = new TcpForwarder({ listener: l.listen, route: routes[0]!, clock: deps.clock, metrics, log });
        server = createNetServer({ allowHalfOpen: true, noDelay: true }, (s) => {
          track(s);
          fwd.handle(s);
        });
        active = () => sockets.size;
        break;
      }
    }
    const addr = await listen(server, l.listen);
    return { view: { listen: l.listen, address: `${addr.address}:${addr.port}`, protocol, routes }, server, sockets, active, closeIdle };
  }

  return {
    listeners: bound.map((b) => {
      const a = b.server.address() as AddressInfo;
      return { listen: b.view.listen, protocol: b.view.protocol, host: a.address, port: a.port };
    }),
    adminUrl: admin ? `http://${hostPort(admin.address() as AddressInfo)}` : undefined,
    metrics,
    snapshot,
    upstream(listener, route, subset = 'all') {
      return bound[listener]?.view.routes.find((r) => r.name === route)?.subsets.find((s) => s.name === subset)?.upstream;
    },
    async drain(timeoutMs = config.drainTimeoutMs ?? 10_000) {
      draining = true;
      for (const b of bound) {
        b.server.close();
        // Idle keep-alive connections go now; busy ones close after their answer (connection: close).
        b.closeIdle();
      }
      const until = deps.clock.now() + timeoutMs;
      while (bound.some((b) => b.active() > 0) && deps.clock.now() < until) {
        await new Promise<void>((r) => deps.clock.setTimeout(r, 20));
        for (const b of bound) b.closeIdle();
      }
      for (const b of bound) for (const s of b.sockets) s.destroy();
      admin?.close();
      pools.close();
    },
  };
}

function listen(server: HttpServer | NetServer, address: string): Promise<AddressInfo> {
  const { host, port } = parseHostPort(address);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}

function hostPort(a: AddressInfo): string {
  return a.family === 'IPv6' || a.address.includes(':') ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
}
