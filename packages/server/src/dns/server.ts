import dgram from 'node:dgram';
import { lookup } from 'node:dns/promises';
import net, { isIP, isIPv6, type AddressInfo } from 'node:net';
import tls from 'node:tls';
import { errors, type Clock, type Random } from '@beacon/core';
import type { CatalogReader } from '../catalog/types.js';
import type { DnsCatalog, DnsFederation } from './backend.js';
import { UdpWorkers } from './workers.js';
import type { DnsConfig } from './config.js';
import { DnsEngine, type DnsLogger, type DnsStats } from './engine.js';
import { addCounts, type DnsCountsSnapshot } from './counts.js';
import { ipBytes } from './wire.js';
import { TcpConnections, type TcpStats } from './tcp.js';
import { dgramPeer, udpAnswerer, udpRateLimiter } from './udp.js';
import { BatchedUdpSocket, udpAddon } from './native-udp.js';

export interface DnsServerOptions {
  /** The catalog view; `onChange` is needed only with several UDP processes (it feeds their replicas). */
  catalog: DnsCatalog & Partial<Pick<CatalogReader, 'onChange'>>;
  config: DnsConfig;
  random: Random;
  clock: Clock;
  logger?: DnsLogger;
  /** Other datacenters' services and prepared queries. */
  federation?: DnsFederation;
  /** Certificate and key (PEM) for DNS over TLS on `config.tlsAddr`. */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /**
   * Read and answer UDP in batches with the native addon when it was built (the default); false
   * uses Node's dgram, which is also what runs when the addon is missing.
   */
  udpBatching?: boolean;
}

/** One bound UDP socket of the server process, whichever way it is read. */
interface UdpFront {
  readonly address: AddressInfo;
  /** How worker processes read the same port: their own socket on it, or this one passed over IPC. */
  readonly share: UdpShare;
  start(): void;
  close(): Promise<void>;
}

export type UdpShare = { kind: 'reuseport'; host: string; port: number; ipv6: boolean; maxReply: number } | { kind: 'socket'; socket: dgram.Socket };

/** The largest UDP reply the server sends (a batch slot must hold it). */
export function maxUdpReply(config: Pick<DnsConfig, 'maxUdpSize'>): number {
  return Math.max(512, config.maxUdpSize);
}

export interface DnsServer {
  /** Binds UDP and TCP on the same address (port 0: one free port for both), and DNS over TLS when configured. */
  listen(): Promise<{ udp: AddressInfo; tcp: AddressInfo; tls?: AddressInfo }>;
  close(): Promise<void>;
  /** Answers by proto, type and rcode and their latency, summed over this process and its UDP workers. */
  counts(): Promise<DnsCountsSnapshot>;
  /** Counters of this process (and of worker processes once they stopped). */
  stats(): DnsStats & TcpStats & { workers: number; workerQueries: number };
}

/**
 * Replies only ever go to the address a query came from, always an IP literal: skip the
 * resolver (and the tick it costs per packet).
 */
export const literalLookup = ((address: string, family: number, cb: (err: Error | null, address: string, family: number) => void) =>
  cb(null, address, family)) as unknown as dgram.SocketOptions['lookup'];

export function createDnsServer(opts: DnsServerOptions): DnsServer {
  const { config, clock } = opts;
  const logger = opts.logger;
  const wildcard = config.host === '0.0.0.0' || config.host === '::';
  const engine = new DnsEngine({ ...opts, nsAddress: wildcard ? undefined : ipBytes(config.host) });
  let udp: UdpFront | undefined;
  let tcp: net.Server | undefined;
  let dot: tls.Server | undefined;
  let workers: UdpWorkers | undefined;
  const tcpConnections = new TcpConnections(config, clock, (msg) => engine.handle(msg, 'tcp'));
  let closing: Promise<void> | undefined;

  const limiter = udpRateLimiter(config, clock);
  const addon = opts.udpBatching === false ? undefined : udpAddon();

  const bindUdp = async (host: string, port: number): Promise<UdpFront> => {
    const ipv6 = isIPv6(host);
    if (addon) {
      const b = new BatchedUdpSocket(addon, host, port, ipv6, maxUdpReply(config));
      return {
        address: b.address,
        share: { kind: 'reuseport', host, port: b.address.port, ipv6, maxReply: maxUdpReply(config) },
        start: () => b.start(udpAnswerer(engine, limiter, b.peer)),
        close: async () => b.close(),
      };
    }
    const s = await new Promise<dgram.Socket>((resolve, reject) => {
      const s = dgram.createSocket({ type: ipv6 ? 'udp6' : 'udp4', lookup: literalLookup });
      s.once('error', reject);
      s.bind(port, host, () => {
        s.off('error', reject);
        s.on('error', (err) => logger?.warn({ err }, 'DNS UDP socket error'));
        resolve(s);
      });
    });
    let open = true;
    return {
      address: s.address(),
      share: { kind: 'socket', socket: s },
      start: () => s.on('message', udpAnswerer(engine, limiter, dgramPeer(() => (open ? s : undefined)))),
      close: () => {
        open = false;
        return new Promise<void>((r) => s.close(() => r()));
      },
    };
  };

  if (config.tlsAddr && !opts.tls) throw errors.invalid('DNS over TLS needs a certificate and key');
  // DNS over TLS is DNS over TCP inside TLS (RFC 7858): the same framing, caps and timeouts.
  const bindTcp = (host: string, port: number, secure?: DnsServerOptions['tls']) =>
    new Promise<net.Server>((resolve, reject) => {
      const s = secure
        ? // A handshake is held to the frame timeout: a client that never finishes one must not hold a socket for Node's 120 s.
          tls.createServer({ cert: secure.cert, key: secure.key, minVersion: 'TLSv1.2', handshakeTimeout: config.tcpFrameTimeoutMs }, tcpConnections.accept).on('tlsClientError', (_err, socket) => socket.destroy())
        : net.createServer(tcpConnections.accept);
      s.maxConnections = config.tcpMaxConnections;
      s.once('error', reject);
      s.listen({ port, host, exclusive: true }, () => {
        s.off('error', reject);
        s.on('error', (err) => logger?.warn({ err }, 'DNS TCP server error'));
        resolve(s);
      });
    });

  const closeTcp = (s: net.Server) => new Promise<void>((r) => s.close(() => r()));

  return {
    async listen() {
      if (udp) throw errors.conflict('the DNS server is already listening');
      const host = isIP(config.host) ? config.host : (await lookup(config.host)).address;
      // With port 0, the free UDP port may be taken for TCP: try a few.
      for (let attempt = 0; ; attempt++) {
        const u = await bindUdp(host, config.port);
        try {
          tcp = await bindTcp(host, u.address.port);
          udp = u;
          break;
        } catch (err) {
          await u.close();
          if (config.port !== 0 || attempt >= 5) throw err;
        }
      }
      if (config.udpProcesses > 1) {
        const catalog = opts.catalog;
        if (!catalog.onChange) throw errors.invalid('several DNS UDP processes need a catalog with onChange');
        workers = new UdpWorkers({
          share: udp.share,
          config,
          catalog: catalog as DnsCatalog & Pick<CatalogReader, 'onChange'>,
          engine,
          random: opts.random,
          clock,
          ...(logger ? { logger } : {}),
        });
        try {
          await workers.start(config.udpProcesses - 1);
        } catch (err) {
          await Promise.all([udp.close(), closeTcp(tcp!)]);
          udp = undefined;
          tcp = undefined;
          throw err;
        }
      }
      if (config.tlsAddr) {
        try {
          const tlsHost = isIP(config.tlsAddr.host) ? config.tlsAddr.host : (await lookup(config.tlsAddr.host)).address;
          dot = (await bindTcp(tlsHost, config.tlsAddr.port, opts.tls)) as tls.Server;
        } catch (err) {
          await Promise.all([workers?.close(), udp.close(), closeTcp(tcp!)]);
          udp = undefined;
          tcp = undefined;
          workers = undefined;
          throw err;
        }
      }
      udp.start();
      const tlsAddress = dot?.address() as AddressInfo | undefined;
      logger?.info({ udp: udp.address, tcp: tcp.address(), ...(tlsAddress ? { tls: tlsAddress } : {}), domain: config.domain, threads: config.udpProcesses, batched: udp.share.kind === 'reuseport' }, 'DNS listening');
      return { udp: udp.address, tcp: tcp.address() as AddressInfo, ...(tlsAddress ? { tls: tlsAddress } : {}) };
    },

    close() {
      closing ??= (async () => {
        tcpConnections.closeAll();
        await workers?.close();
        const u = udp;
        const t = tcp;
        const d = dot;
        udp = undefined;
        tcp = undefined;
        dot = undefined;
        await Promise.all([u?.close(), t && closeTcp(t), d && closeTcp(d), engine.close()]);
      })();
      return closing;
    },

    async counts() {
      const own = engine.counts.snapshot();
      return workers ? addCounts(own, await workers.counts()) : own;
    },

    stats() {
      const own = engine.stats();
      const total = { ...own, cache: { ...own.cache } };
      let workerQueries = 0;
      for (const w of workers?.stoppedStats() ?? []) {
        workerQueries += w.queries;
        total.queries += w.queries;
        total.dropped += w.dropped;
        total.rejected += w.rejected;
        total.truncated += w.truncated;
        total.failures += w.failures;
        total.cache.hits += w.cache.hits;
        total.cache.misses += w.cache.misses;
      }
      return { ...total, ...tcpConnections.stats(), workers: workers?.size ?? 0, workerQueries };
    },
  };
}
