import { connect as netConnect, type Socket } from 'node:net';
import type { EndpointState, Upstream } from '@beacon/client';
import type { Clock } from '@beacon/core';
import type { AccessLog } from './access-log.js';
import type { ProxyMetrics } from './metrics.js';
import type { Route } from './routes.js';

export interface TcpForwarderDeps {
  listener: string;
  route: Route;
  clock: Clock;
  metrics: ProxyMetrics;
  log: AccessLog;
}

/**
 * L4 forwarding: each client connection goes to one instance picked through the SDK's upstream
 * (least-request counts open connections), connection failures are retried on another instance
 * by the upstream's connect-only retry policy (nothing was sent), then bytes are piped both ways.
 * Both sockets allow half-open, so a client's FIN reaches the instance while its answer still
 * flows back.
 */
export class TcpForwarder {
  constructor(private readonly deps: TcpForwarderDeps) {}

  /** The `connection` handler of a `net.Server` created with `allowHalfOpen: true`. */
  readonly handle = (client: Socket): void => {
    void this.forward(client);
  };

  private async forward(client: Socket): Promise<void> {
    const { route, clock, metrics, log, listener } = this.deps;
    const t0 = clock.now();
    // Read now: a closed socket no longer knows its peer.
    const peer = client.remoteAddress ?? '';
    client.pause();
    let clientClosed = false;
    client.once('close', () => (clientClosed = true));
    client.on('error', () => client.destroy());
    const up = route.choose();
    const key = route.hashOn === 'client-ip' ? peer : undefined;
    const tried = new Set<string>();
    let ep: EndpointState;
    let upstream: Socket;
    try {
      if (!up.view.isSynced) await up.whenReady();
      const retry = up.retryFor('connect-only');
      ({ ep, socket: upstream } = retry ? await retry.execute(() => this.connect(client, up, key, tried)) : await this.connect(client, up, key, tried));
    } catch (err) {
      const reason = tried.size ? 'connect' : 'no_instance';
      metrics.localReply(listener, route.name, reason);
      metrics.route(route.name, route.service).add('', 503, clock.now() - t0);
      log.connection(listener, peer, route.name, '', clock.now() - t0, 0, 0, `${reason}: ${(err as Error).message}`, up.view.datacenter);
      client.destroy();
      return;
    }
    if (clientClosed) {
      upstream.destroy();
      return;
    }
    upstream.on('error', (err) => {
      up.failed(ep, err, clock.now() - t0);
      client.destroy();
    });
    client.on('error', () => upstream.destroy());
    client.once('close', () => upstream.destroy());
    upstream.once('close', () => {
      up.finished(ep);
      client.destroy();
      const ms = clock.now() - t0;
      metrics.route(route.name, route.service).add(ep.id, 200, ms);
      log.connection(listener, peer, route.name, ep.id, ms, client.bytesRead, client.bytesWritten, undefined, up.view.datacenter);
    });
    relay(client, upstream);
    // The other way, upstream → client, is the onread callback set up in connect().
    upstream.once('end', () => client.end());
    client.resume();
  }

  private connect(client: Socket, up: Upstream, key: string | undefined, tried: Set<string>): Promise<{ ep: EndpointState; socket: Socket }> {
    const ep = up.pick(key, tried);
    tried.add(ep.id);
    up.started(ep);
    const start = this.deps.clock.now();
    return new Promise((resolve, reject) => {
      const socket: Socket = netConnect({ host: ep.target.host, port: ep.target.port, allowHalfOpen: true, noDelay: true, onread: readInto(client, (): Socket => socket) });
      socket.once('connect', () => {
        socket.off('error', onError);
        up.responded(ep, 200, this.deps.clock.now() - start);
        resolve({ ep, socket });
      });
      const onError = (err: Error) => {
        up.failed(ep, err, this.deps.clock.now() - start);
        up.finished(ep);
        reject(err);
      };
      socket.once('error', onError);
    });
  }
}

/** Bytes read from an instance per read: HAProxy's default buffer size (tune.bufsize). */
const READ_BUFFER_BYTES = 16 * 1024;

/**
 * Reads the instance's bytes into one buffer per connection and writes them to the client
 * straight from it: no Buffer, stream push or 'data' event per read (a profile of `pipe` had
 * those as most of the proxy's own time per chunk). A write the kernel did not take at once still
 * points into the buffer, so reading stops until it has drained.
 */
function readInto(client: Socket, upstream: () => Socket): { buffer: Buffer; callback(n: number, buf: Buffer): boolean } {
  const resume = () => upstream().resume();
  return {
    buffer: Buffer.allocUnsafe(READ_BUFFER_BYTES),
    callback(n, buf) {
      if (client.destroyed) return false;
      client.write(buf.subarray(0, n));
      if (client.writableLength === 0) return true;
      client.once('drain', resume);
      return false;
    },
  };
}

/** The client's bytes to the instance, paused while the instance's side is full. */
function relay(from: Socket, to: Socket): void {
  from.on('data', (chunk: Buffer) => {
    if (!to.write(chunk)) from.pause();
  });
  to.on('drain', () => from.resume());
  // Half-close: the client's FIN goes on to the instance, whose answer still flows back.
  from.once('end', () => to.end());
}
