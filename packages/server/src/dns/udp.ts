import type { RemoteInfo, Socket } from 'node:dgram';
import type { Clock } from '@beacon/core';
import { isPromise } from './chain.js';
import type { DnsConfig } from './config.js';
import type { DnsEngine } from './engine.js';
import { ResponseRateLimiter, slipReply } from './rrl.js';

export type UdpSend = (reply: Buffer, to: RemoteInfo) => void;

/** The configured response rate limiter, none when `rrlRate` is 0. */
export function udpRateLimiter(config: Pick<DnsConfig, 'rrlRate' | 'rrlSlip'>, clock: Clock): ResponseRateLimiter | undefined {
  return config.rrlRate > 0 ? new ResponseRateLimiter({ rate: config.rrlRate, slip: config.rrlSlip, clock }) : undefined;
}

/**
 * The `message` listener of a UDP socket (the server's and each worker's): the engine's reply,
 * through the rate limiter when there is one, sent back to where the query came from.
 */
export function udpAnswerer(engine: DnsEngine, limiter: ResponseRateLimiter | undefined, send: UdpSend): (msg: Buffer, rinfo: RemoteInfo) => void {
  const out: UdpSend = limiter
    ? (reply, to) => {
        const verdict = limiter.verdict(to.address);
        switch (verdict) {
          case 'send':
            return send(reply, to);
          case 'slip': {
            engine.counts.rateLimited('slipped');
            const tc = slipReply(reply);
            if (tc) send(tc, to);
            return;
          }
          case 'drop':
            engine.counts.rateLimited('dropped');
            return;
        }
      }
    : send;
  return (msg, rinfo) => {
    const reply = engine.handle(msg, 'udp');
    if (reply === undefined) return;
    if (isPromise(reply)) void reply.then((r) => r && out(r, rinfo));
    else out(reply, rinfo);
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
