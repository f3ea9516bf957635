import * as grpc from '@grpc/grpc-js';
import type { Clock, Timer } from '@beacon/core';
import type { CatalogReader } from '../catalog/types.js';
import { formatHostPort, parseHostPort } from '../addr.js';
import { presentedSecret } from '../acl/secret.js';
import { ACL_OFF, type AclResolver, type Authorizer } from '../acl/types.js';
import type { AuditSink } from '../audit/log.js';
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
  /** Whose token a stream presents and what it may read (`--acl`). Default: ACLs off, everything to everyone. */
  acl?: Pick<AclResolver, 'resolve' | 'onChange'>;
  /** Where a stream refused for its token is recorded (`--audit-log`). */
  audit?: AuditSink;
}

/** An open stream, with what it needs to be checked again when its token changes. */
interface Open {
  call: grpc.ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>;
  /** As presented; kept only in memory, to resolve it again after an ACL change. */
  secret: string | undefined;
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
  private readonly streams = new Map<XdsStream, Open>();
  private readonly acl: Pick<AclResolver, 'resolve' | 'onChange'>;
  private readonly offAcl: () => void;
  private readonly dirty = new Set<string>();
  private flushTimer: Timer | undefined;
  private unsubscribe: (() => void) | undefined;
  private nextStream = 0;
  private counters: XdsCounters | undefined;
  private readonly events: StreamEvents;

  constructor(private readonly opts: XdsServerOptions) {
    parseHostPort(opts.addr, 'xDS address');
    const log = opts.logger;
    this.acl = opts.acl ?? ACL_OFF;
    this.offAcl = this.acl.onChange((ids) => {
      for (const [stream, open] of this.streams) if (ids === 'all' || ids.has(stream.accessorId)) this.recheck(stream, open);
    });
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
    return [...this.streams.keys()].map((s) => s.info());
  }

  async close(): Promise<void> {
    this.unsubscribe?.();
    this.offAcl();
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
    for (const s of this.streams.keys()) s.push();
    this.opts.logger?.debug({ services: services.length, streams: this.streams.size }, 'xDS push');
  }

  private serve(call: grpc.ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>): void {
    // Where Consul's xDS server reads a token, in the HTTP API's order (x-consul-token first).
    const header = (name: string) => {
      const v = call.metadata.get(name)[0];
      return typeof v === 'string' ? v : undefined;
    };
    const secret = presentedSecret({ headers: { 'x-consul-token': header('x-consul-token'), authorization: header('authorization') }, query: {} });
    let authz: Authorizer;
    try {
      authz = this.acl.resolve(secret);
    } catch {
      // A secret that names no token is refused, not served as anonymous: a typo shows (as on HTTP).
      const peer = call.getPeer();
      this.opts.logger?.warn({ peer }, 'xDS stream refused: its token names no ACL token');
      this.opts.audit?.record({ accessor: 'unresolved', remote: hostOf(peer), interface: 'xds', action: 'StreamAggregatedResources', target: '', result: 401 });
      call.emit('error', { code: grpc.status.UNAUTHENTICATED, details: 'ACL not found' });
      return;
    }
    const stream = new XdsStream(++this.nextStream, call.getPeer(), {
      snapshot: this.snapshot,
      clock: this.opts.clock,
      send: (res) => call.write(res),
      events: this.events,
      authz,
    });
    this.streams.set(stream, { call, secret });
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

  /** The stream's token changed: it is sent what the new rights let it read, or ended once the token is gone. */
  private recheck(stream: XdsStream, open: Open): void {
    let authz: Authorizer;
    try {
      authz = this.acl.resolve(open.secret);
    } catch {
      this.streams.delete(stream);
      this.opts.logger?.info({ stream: stream.id, accessor: stream.accessorId }, 'xDS stream ended: its ACL token was deleted');
      open.call.emit('error', { code: grpc.status.UNAUTHENTICATED, details: 'ACL not found: the token was deleted' });
      return;
    }
    stream.reauthorize(authz);
  }
}

/** The address of a gRPC peer (`127.0.0.1:5000`, `[::1]:5000`), as the HTTP audit lines give it: no port. */
function hostOf(peer: string): string {
  try {
    return parseHostPort(peer, 'peer').host;
  } catch {
    return peer;
  }
}
