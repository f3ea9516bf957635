import type net from 'node:net';
import type { Clock, Timer } from '@beacon/core';
import { isPromise } from './chain.js';
import type { DnsConfig } from './config.js';
import type { EngineReply } from './engine.js';
import { clientPrefix } from './client-prefix.js';

/** Queued output on one TCP connection past which we stop reading from it. */
const TCP_HIGH_WATER = 256 * 1024;
/** Forwarded queries one TCP connection may have outstanding. */
const TCP_MAX_PENDING = 64;

export interface TcpStats {
  tcpConnections: number;
  /** Connections closed at once because their client already held its share. */
  tcpRefused: number;
  /** Connections closed for sitting idle between frames or for not finishing a frame in time. */
  tcpTimedOut: number;
}

type Limits = Pick<DnsConfig, 'tcpIdleTimeoutMs' | 'tcpFrameTimeoutMs' | 'tcpMaxConnectionsPerClient'>;

/**
 * DNS over TCP (RFC 7766): two-byte length framing, pipelined queries, and the limits that keep
 * a slow or hostile client from holding connection slots:
 *
 * - a frame (length and message) must arrive within `tcpFrameTimeoutMs` of its first byte;
 *   more bytes of the same frame do not extend it, so trickling a byte at a time buys nothing;
 * - between frames a connection may sit idle for `tcpIdleTimeoutMs`;
 * - one client holds at most `tcpMaxConnectionsPerClient` connections, so one address cannot
 *   take every slot of the server-wide cap (`net.Server.maxConnections`).
 */
export class TcpConnections {
  private readonly sockets = new Set<net.Socket>();
  private readonly perClient = new Map<string, number>();
  private refused = 0;
  private timedOut = 0;

  constructor(
    private readonly limits: Limits,
    private readonly clock: Clock,
    private readonly handle: (msg: Buffer) => EngineReply | Promise<EngineReply>,
  ) {}

  readonly accept = (socket: net.Socket): void => {
    const client = tcpClientKey(socket.remoteAddress);
    const held = this.perClient.get(client) ?? 0;
    if (held >= this.limits.tcpMaxConnectionsPerClient) {
      this.refused++;
      socket.on('error', () => undefined);
      socket.destroy();
      return;
    }
    this.perClient.set(client, held + 1);
    this.sockets.add(socket);
    socket.on('close', () => {
      this.sockets.delete(socket);
      const n = (this.perClient.get(client) ?? 1) - 1;
      if (n > 0) this.perClient.set(client, n);
      else this.perClient.delete(client);
    });
    this.serve(socket);
  };

  stats(): TcpStats {
    return { tcpConnections: this.sockets.size, tcpRefused: this.refused, tcpTimedOut: this.timedOut };
  }

  closeAll(): void {
    for (const s of this.sockets) s.destroy();
  }

  private serve(socket: net.Socket): void {
    socket.setNoDelay(true);
    let buffered: Buffer = Buffer.alloc(0);
    let pending = 0;
    let timer: Timer | undefined;
    const expireIn = (ms: number) => {
      timer?.cancel();
      timer = this.clock.setTimeout(() => {
        this.timedOut++;
        socket.destroy();
      }, ms);
    };
    const write = (r: EngineReply) => {
      if (!r || socket.destroyed) return;
      const framed = Buffer.allocUnsafe(r.length + 2);
      framed.writeUInt16BE(r.length, 0);
      r.copy(framed, 2);
      socket.write(framed);
    };
    const throttle = () => {
      if (socket.writableLength > TCP_HIGH_WATER || pending >= TCP_MAX_PENDING) socket.pause();
      else if (socket.isPaused()) socket.resume();
    };
    socket.on('data', (chunk: Buffer) => {
      const inFrame = buffered.length > 0;
      buffered = inFrame ? Buffer.concat([buffered, chunk]) : chunk;
      let off = 0;
      while (buffered.length - off >= 2) {
        const len = buffered.readUInt16BE(off);
        // Nothing shorter than a header is a query; the stream cannot be trusted after it.
        if (len < 12) {
          socket.destroy();
          return;
        }
        if (buffered.length - off - 2 < len) break;
        const msg = buffered.subarray(off + 2, off + 2 + len);
        off += 2 + len;
        const reply = this.handle(msg);
        if (isPromise(reply)) {
          pending++;
          void reply.then((r) => {
            pending--;
            write(r);
            throttle();
          });
        } else write(reply);
      }
      buffered = off === buffered.length ? Buffer.alloc(0) : Buffer.from(buffered.subarray(off));
      // A completed frame is activity; bytes of an unfinished one are not.
      if (buffered.length === 0) expireIn(this.limits.tcpIdleTimeoutMs);
      else if (off > 0 || !inFrame) expireIn(this.limits.tcpFrameTimeoutMs);
      throttle();
    });
    socket.on('drain', throttle);
    socket.on('error', () => socket.destroy());
    socket.on('close', () => timer?.cancel());
    expireIn(this.limits.tcpIdleTimeoutMs);
  }
}

/**
 * Who a connection counts against: an IPv4 address, or an IPv6 /64 (what one host, or one
 * customer, usually gets — a per-address count would let it use 2^64 addresses).
 */
export function tcpClientKey(address: string | undefined): string {
  return address ? clientPrefix(address, 4, 8) : '';
}
