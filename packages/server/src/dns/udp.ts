import type { RemoteInfo, Socket } from 'node:dgram';
import type { Clock } from '@beacon/core';
import { isPromise } from './chain.js';
import type { DnsConfig } from './config.js';
import type { DnsEngine } from './engine.js';
import { ResponseRateLimiter, slipReply } from './rrl.js';

/** How a UDP front end (dgram, or the batched addon) reaches the client a query came from. */
export interface UdpPeer<To> {
  send(reply: Buffer, to: To): void;
  /** The client's address as text (for the rate limiter). */
  address(to: To): string;
  /** `to` as it must be kept for an answer that comes later, after the packet's buffers are reused. */
  keep(to: To): To;
}

/** Node's dgram: a reply goes to the `rinfo` the query came with. */
export function dgramPeer(socket: () => Socket | undefined): UdpPeer<RemoteInfo> {
  return { send: (reply, to) => socket()?.send(reply, to.port, to.address), address: (to) => to.address, keep: (to) => to };
}

/** The configured response rate limiter, none when `rrlRate` is 0. */
export function udpRateLimiter(config: Pick<DnsConfig, 'rrlRate' | 'rrlSlip'>, clock: Clock): ResponseRateLimiter | undefined {
  return config.rrlRate > 0 ? new ResponseRateLimiter({ rate: config.rrlRate, slip: config.rrlSlip, clock }) : undefined;
}

/**
 * Answers one UDP query (from dgram's `message` event or a batch of the addon's): the engine's
 * reply, through the rate limiter when there is one, sent back to where the query came from.
 */
export function udpAnswerer<To>(engine: DnsEngine, limiter: ResponseRateLimiter | undefined, peer: UdpPeer<To>): (msg: Buffer, to: To) => void {
  const out: (reply: Buffer, to: To) => void = limiter
    ? (reply, to) => {
        const verdict = limiter.verdict(peer.address(to));
        switch (verdict) {
          case 'send':
            return peer.send(reply, to);
          case 'slip': {
            engine.counts.rateLimited('slipped');
            const tc = slipReply(reply);
            if (tc) peer.send(tc, to);
            return;
          }
          case 'drop':
            engine.counts.rateLimited('dropped');
            return;
        }
      }
    : (reply, to) => peer.send(reply, to);
  return (msg, to) => {
    const reply = engine.handle(msg, 'udp');
    if (reply === undefined) return;
    if (isPromise(reply)) {
      const later = peer.keep(to);
      void reply.then((r) => r && out(r, later));
    } else out(reply, to);
  };
}

/**
 * Replies only ever go to the address a query came from, an IP literal, so a socket needs no
 * resolver. A socket the server creates gets `literalLookup`; one that arrives over IPC (a UDP
 * worker's) is built by Node with `dns.lookup`, which answers an IP literal on the next tick:
 * every reply would wait for a tick and pay for the resolver's argument checks (the worker
 * profile showed each `sendmsg` running from the tick queue). There is no public way to set
 * the lookup of such a socket, so this swaps the one on Node's handle, found by the
 * description of the symbol it is kept under; if Node ever keeps it elsewhere, nothing changes
 * and replies take the slower path.
 */
export function skipResolver(socket: Socket): boolean {
  const key = Object.getOwnPropertySymbols(socket).find((s) => s.description === 'state symbol');
  const handle = key && (socket as unknown as Record<symbol, { handle?: { lookup?: unknown } } | undefined>)[key]?.handle;
  if (!handle || typeof handle.lookup !== 'function') return false;
  handle.lookup = (address: string, cb: (err: Error | null, ip: string) => void) => cb(null, address);
  return true;
}
