import * as grpc from '@grpc/grpc-js';
import type { Clock, Timer } from '@beacon/core';
import type { CatalogReader } from '../catalog/types.js';
import { formatHostPort, parseHostPort } from '../addr.js';
import { xdsProtos, type ResourceType } from './protos.js';
import { XdsSnapshot } from './snapshot.js';
import { XdsStream, type DiscoveryRequest, type DiscoveryResponse, type StreamEvents, type XdsClientInfo } from './stream.js';

export interface XdsLogger {
  debug(obj: unknown, msg?: string): void;
  info(obj: unknown, msg?: string): void;
  warn(obj: unknown, msg?: string): void;
}

export interface XdsServerOptions {
  catalog: Pick<CatalogReader, 'services' | 'service' | 'onChange'>;
  clock: Clock;
  /** `host:port` to listen on (`--xds-addr`); port 0 picks a free one. */
  addr: string;
  logger?: XdsLogger;
  /** Catalog changes within this window go out as one push. Default 5 ms. */
  coalesceMs?: number;
}

/** What the metrics count: sent responses, ACKs and NACKs per type. */
export interface XdsCounters {
  pushed(): void;
  sent(type: ResourceType): void;
  acked(type: ResourceType): void;
  nacked(type: ResourceType): void;
}

/**
 * Beacon's ADS server (xDS v3, state of the world): one more reader of the catalog view. The
 * catalog's change feed marks services dirty; after a short window every stream is offered the
 * rebuilt resources and sends the types whose answer changed.
 */
export class XdsServer {
  // A DiscoveryRequest is small: names, a nonce, an error. A megabyte is plenty and bounds a bad client.
  private readonly server = new grpc.Server({ 'grpc.max_receive_message_length': 1 << 20 });
  private readonly snapshot: XdsSnapshot;
  private readonly streams = new Set<XdsStream>();
  private readonly dirty = new Set<string>();
  private flushTimer: Timer | undefined;
  private unsubscribe: (() => void) | undefined;
  private nextStream = 0;
  private counters: XdsCounters | undefined;
  private readonly events: StreamEvents;

  constructor(private readonly opts: XdsServerOptions) {
    parseHostPort(opts.addr, 'xDS address');
    const log = opts.logger;
    this.snapshot = new XdsSnapshot(opts.catalog, log);
    this.events = {
      sent: (type) => this.counters?.sent(type),
      acked: (type) => this.counters?.acked(type),
      nacked: (n) => {
        this.counters?.nacked(n.type);
        log?.warn(n, `xDS NACK from ${n.node || 'a client'} for ${n.type} version ${n.version}: ${n.message}`);
      },
      refused: (r) => log?.warn(r, `xDS: ${r.reason}`),
    };
    this.server.addService(xdsProtos().ads, {
      StreamAggregatedResources: (call: grpc.ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>) => this.serve(call),
      DeltaAggregatedResources: (call: grpc.ServerDuplexStream<unknown, unknown>) =>
        call.emit('error', { code: grpc.status.UNIMPLEMENTED, details: 'Beacon serves state-of-the-world ADS only (StreamAggregatedResources)' }),
    });
  }

  /** Counts into the server's metrics (xds/routes.ts). */
  countWith(counters: XdsCounters): void {
    this.counters = counters;
  }

  /** Binds and starts following the catalog. Resolves with the bound port. */
  async listen(): Promise<{ host: string; port: number }> {
    const { host, port } = parseHostPort(this.opts.addr, 'xDS address');
    const bound = await new Promise<number>((resolve, reject) =>
      this.server.bindAsync(formatHostPort(host, port), grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    this.unsubscribe = this.opts.catalog.onChange((change) => {
      for (const s of change.services) this.dirty.add(s);
      this.flushTimer ??= this.opts.clock.setTimeout(() => this.flush(), this.opts.coalesceMs ?? 5);
    });
    // Whatever changed between construction and now (another server of a cluster writes meanwhile).
    this.snapshot.update(this.opts.catalog.services().map((s) => s.name));
    return { host, port: bound };
  }

  get streamCount(): number {
    return this.streams.size;
  }

  clients(): XdsClientInfo[] {
    return [...this.streams].map((s) => s.info());
  }

  async close(): Promise<void> {
    this.unsubscribe?.();
    this.flushTimer?.cancel();
    // Open streams end at once: clients reconnect to another server (or this one, restarted).
    this.server.forceShutdown();
    this.streams.clear();
  }

  private flush(): void {
    this.flushTimer = undefined;
    if (this.dirty.size === 0) return;
    const services = [...this.dirty];
    this.dirty.clear();
    this.snapshot.update(services);
    this.counters?.pushed();
    for (const s of this.streams) s.push();
    this.opts.logger?.debug({ services: services.length, streams: this.streams.size }, 'xDS push');
  }

  private serve(call: grpc.ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>): void {
    const stream = new XdsStream(++this.nextStream, call.getPeer(), {
      snapshot: this.snapshot,
      clock: this.opts.clock,
      send: (res) => call.write(res),
      events: this.events,
    });
    this.streams.add(stream);
    const end = () => this.streams.delete(stream);
    call.on('data', (req: DiscoveryRequest) => {
      try {
        stream.onRequest(req);
      } catch (err) {
        // A request this server cannot answer ends that stream, never the server.
        this.opts.logger?.warn({ err, stream: stream.id }, 'xDS stream failed');
        end();
        call.emit('error', { code: grpc.status.INTERNAL, details: 'xDS stream failed' });
      }
    });
    call.on('end', () => {
      end();
      call.end();
    });
    call.on('error', end);
    call.on('close', end);
    call.on('cancelled', end);
  }
}
