import { isBeaconError, type Clock, type Random } from '@beacon/core';
import { CatalogBackend, type DnsCatalog, type DnsFederation } from './backend.js';
import { cachePlugin, type CacheStats } from './cache.js';
import { DnsCounts, LATENCY_SAMPLE } from './counts.js';
import { chain, DnsRequest, isPromise, type DnsResult, type Handler, type Plugin, type Transport } from './chain.js';
import type { DnsConfig } from './config.js';
import { forwardPlugin, refuseHandler } from './forward.js';
import { Responder } from './respond.js';
import { parseQuery, RCODE } from './wire.js';
import { MessageWriter } from './writer.js';
import { zonePlugin } from './zone.js';

/** pino-compatible. */
export interface DnsLogger {
  info(obj: unknown, msg?: string): void;
  warn(obj: unknown, msg?: string): void;
  error(obj: unknown, msg?: string): void;
}

export interface DnsStats {
  queries: number;
  /** Packets not answered: too short, or responses. */
  dropped: number;
  /** Packets answered FORMERR/NOTIMP by the parser, or BADVERS. */
  rejected: number;
  /** UDP answers cut to an empty TC reply. */
  truncated: number;
  /** Handler failures answered SERVFAIL. */
  failures: number;
  cache: CacheStats;
}

export interface EngineOptions {
  catalog: DnsCatalog;
  config: DnsConfig;
  random: Random;
  clock: Clock;
  logger?: DnsLogger;
  /** SOA serial; defaults to the clock's seconds at start. */
  serial?: number;
  /** Glue address of `ns.<domain>`. */
  nsAddress?: Buffer | undefined;
  /** Other datacenters and prepared queries (the main process only: workers hand those names over). */
  federation?: DnsFederation;
  /** Extra plugins between the cache and the zone. */
  plugins?: readonly Plugin[];
}

export type EngineReply = Buffer | undefined;

/**
 * Everything between a received packet and the bytes to send back, without sockets:
 * parse → handler chain [cache → zone → recursor | refuse] → responder. Never throws.
 */
export class DnsEngine {
  private readonly handler: Handler;
  private readonly responder: Responder;
  private readonly cache: ReturnType<typeof cachePlugin>;
  private readonly forwarder: ReturnType<typeof forwardPlugin> | undefined;
  private readonly logger: DnsLogger | undefined;
  private lastErrorLog = -Infinity;
  private readonly serialNumber: number;
  private readonly counters = { queries: 0, dropped: 0, rejected: 0, truncated: 0, failures: 0 };
  /** Answers by proto, type and rcode, and their latency (for /metrics). */
  readonly counts = new DnsCounts();
  /** Answers since the last timed one; the very first answer is timed. */
  private untimed = LATENCY_SAMPLE - 1;

  constructor(private readonly opts: EngineOptions) {
    const { config, catalog, random, clock } = opts;
    this.logger = opts.logger;
    const writer = new MessageWriter();
    this.serialNumber = opts.serial ?? Math.floor(clock.now() / 1000);
    this.cache = cachePlugin({ catalog, random, writer, permutations: config.permutations, maxBytes: config.cacheMaxBytes });
    const zone = zonePlugin({
      backend: new CatalogBackend(catalog, config, clock, opts.federation),
      config,
      serial: this.serialNumber,
      nsAddress: opts.nsAddress,
    });
    const plugins: Plugin[] = [this.cache, ...(opts.plugins ?? []), zone];
    let last: Handler = refuseHandler;
    if (config.recursor) {
      this.forwarder = forwardPlugin({
        recursor: config.recursor,
        timeoutMs: config.recursorTimeoutMs,
        clock,
        random,
        ...(opts.logger ? { logger: opts.logger } : {}),
      });
      last = this.forwarder(refuseHandler);
    }
    this.handler = chain(plugins, last);
    this.responder = new Responder({ maxUdpSize: config.maxUdpSize, random, writer, recursionAvailable: !!config.recursor });
  }

  /** The SOA serial in use (handed to worker processes so every answer carries the same). */
  get serial(): number {
    return this.serialNumber;
  }

  /** The reply to one packet, undefined to drop it; a Promise only when the recursor is asked. */
  handle(raw: Buffer, transport: Transport): EngineReply | Promise<EngineReply> {
    // Latency is measured, not scheduled: the monotonic clock, not the injected one. Two clock
    // reads cost about a third of a cached answer, so one query in LATENCY_SAMPLE is timed.
    const started = (this.untimed = (this.untimed + 1) % LATENCY_SAMPLE) === 0 ? performance.now() : -1;
    this.counters.queries++;
    const parsed = parseQuery(raw);
    if (!parsed.ok) {
      if (parsed.action === 'drop') {
        this.counters.dropped++;
        return undefined;
      }
      this.counters.rejected++;
      return this.counted(this.responder.problem(raw, parsed), transport, -1, started, parsed.rcode);
    }
    const req = new DnsRequest(raw, parsed.query, transport);
    const qtype = parsed.query.qtype;
    if (parsed.query.edns && parsed.query.edns.version > 0) {
      this.counters.rejected++;
      return this.counted(this.responder.badVersion(req), transport, qtype, started, RCODE.BADVERS);
    }
    try {
      const result = this.handler(req);
      if (isPromise(result))
        return result.then(
          (r) => this.counted(this.reply(req, r), transport, qtype, started),
          (err: unknown) => this.counted(this.fail(req, err), transport, qtype, started),
        );
      return this.counted(this.reply(req, result), transport, qtype, started);
    } catch (err) {
      return this.counted(this.fail(req, err), transport, qtype, started);
    }
  }

  /** Counts an answer sent (and times it when sampled); the rcode is read from its header unless it is an extended one (BADVERS). */
  private counted(reply: EngineReply, transport: Transport, qtype: number, started: number, rcode?: number): EngineReply {
    if (!reply) return reply;
    this.counts.answered(transport, qtype, rcode ?? reply[3]! & 0x0f);
    if (started >= 0) this.counts.timed((performance.now() - started) / 1000);
    return reply;
  }

  stats(): DnsStats {
    return { ...this.counters, cache: this.cache.stats() };
  }

  async close(): Promise<void> {
    await this.forwarder?.close();
  }

  private reply(req: DnsRequest, r: DnsResult): EngineReply {
    let out: Buffer;
    switch (r.kind) {
      case 'encoded':
        out = this.responder.encoded(req, r.encoded);
        break;
      case 'answer':
        out = this.responder.answer(req, r.answer);
        break;
      case 'wire':
        out = this.responder.wire(req, r.bytes);
        break;
      case 'drop':
        return undefined;
    }
    if (out[2]! & 0x02 && req.transport === 'udp') this.counters.truncated++;
    return out;
  }

  private fail(req: DnsRequest, err: unknown): EngineReply {
    this.counters.failures++;
    // One log line a second at most: a bug hit by every query must not flood the log.
    const now = this.opts.clock.now();
    if (now - this.lastErrorLog >= 1000) {
      this.lastErrorLog = now;
      this.logger?.error({ err, qtype: req.query.qtype }, 'DNS handler failed; answering SERVFAIL');
    }
    const q = req.query;
    // The one error catalog says which rcode a Beacon error becomes; anything else is SERVFAIL.
    const rcode = isBeaconError(err) ? RCODE[err.rcode] : RCODE.SERVFAIL;
    return this.responder.errorReply(req.raw, q.id, q.flags, rcode, q.questionEnd, q.edns);
  }
}
