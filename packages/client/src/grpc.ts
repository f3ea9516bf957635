import type * as GrpcJs from '@grpc/grpc-js';
import type { IDisposable } from 'cockatiel';
import { errors, isServiceName, type Instance } from '@beacon/core';
import type { DiscoverFilter } from './filter.js';
import type { ServiceView } from './view.js';

type Grpc = typeof GrpcJs;
type Resolver = GrpcJs.experimental.Resolver;
type ResolverListener = GrpcJs.experimental.ResolverListener;
type GrpcUri = GrpcJs.experimental.GrpcUri;

/** What the resolver needs from the client. */
export interface ViewSource {
  discover(service: string, filter?: DiscoverFilter): ServiceView;
}

export interface GrpcResolverOptions {
  /**
   * The application's `@grpc/grpc-js` module. Pass it when the SDK could resolve a different copy
   * than the one your channels come from; by default it is imported lazily.
   */
  grpc?: Grpc;
  /** URI scheme to register (default `beacon`, for targets like `beacon:///payments`). */
  scheme?: string;
  /** Which instances are candidates (default: ready and passing). */
  filter?: DiscoverFilter;
  /** Named port to dial when the target does not name one (default: the instance's main port). */
  port?: string;
  /** gRPC's load-balancing policy across the resolved instances (default `round_robin`). */
  loadBalancing?: 'round_robin' | 'pick_first';
}

/**
 * Parses the path of a `beacon:///…` target: a service, optionally with a named port.
 *
 * @example
 * parseGrpcTarget('payments:grpc'); // { service: 'payments', port: 'grpc' }
 */
export function parseGrpcTarget(path: string): { service: string; port: string | undefined } {
  const clean = path.replace(/^\/+/, '');
  const [service = '', port] = clean.split(':', 2);
  if (!isServiceName(service)) throw errors.invalid(`invalid beacon target ${JSON.stringify(path)}: use beacon:///<service>[:<port name>]`);
  return { service, port: port || undefined };
}

async function loadGrpc(given: Grpc | undefined): Promise<Grpc> {
  if (given) return given;
  try {
    const mod = (await import('@grpc/grpc-js')) as Grpc & { default?: Grpc };
    return mod.experimental ? mod : (mod.default as Grpc);
  } catch (err) {
    throw errors.invalid(`@grpc/grpc-js is not installed (it is an optional peer dependency of @beacon/client): ${(err as Error).message}`);
  }
}

/**
 * Registers a gRPC name resolver so that a channel to `beacon:///payments` (or
 * `beacon:///payments:grpc` for a named port) follows the live instance list of the service: every
 * add, change or removal reaches the channel at once, and gRPC's round-robin spreads calls over the
 * instances. `@grpc/grpc-js` is loaded lazily, so the SDK does not need it unless you call this.
 * The registration is process-wide (grpc-js keeps one table): the last client registered for a
 * scheme serves it.
 *
 * @example
 * import * as grpc from '@grpc/grpc-js';
 * await registerGrpcResolver(client, { grpc });
 * const stub = new PaymentsClient('beacon:///payments', grpc.credentials.createInsecure());
 */
export async function registerGrpcResolver(source: ViewSource, opts: GrpcResolverOptions = {}): Promise<void> {
  const grpc = await loadGrpc(opts.grpc);
  const { statusOrFromValue, statusOrFromError } = grpc.experimental;
  const serviceConfig = statusOrFromValue({ loadBalancingConfig: [{ [opts.loadBalancing ?? 'round_robin']: {} }], methodConfig: [] });

  class BeaconResolver implements Resolver {
    private view: ServiceView | undefined;
    private sub: IDisposable | undefined;
    private pending = false;
    private readonly service: string;
    private readonly port: string | undefined;

    constructor(
      target: GrpcUri,
      private readonly listener: ResolverListener,
    ) {
      const t = parseGrpcTarget(target.path);
      this.service = t.service;
      this.port = t.port ?? opts.port;
      this.start();
    }

    static getDefaultAuthority(target: GrpcUri): string {
      return parseGrpcTarget(target.path).service;
    }

    private start(): void {
      const view = (this.view = source.discover(this.service, opts.filter));
      this.sub = view.onChange(() => this.schedule());
      view.ready().then(
        () => this.schedule(),
        () => {},
      );
    }

    /** Results go out asynchronously (grpc-js's rule) and coalesced: a burst of changes is one update. */
    private schedule(): void {
      if (this.pending) return;
      this.pending = true;
      setImmediate(() => {
        this.pending = false;
        if (this.view?.isSynced) this.push(this.view.instances());
      });
    }

    private push(list: readonly Instance[]): void {
      if (list.length === 0) {
        this.listener(statusOrFromError({ code: grpc.status.UNAVAILABLE, details: `beacon: no available instance of ${this.service}` }), {}, serviceConfig, '');
        return;
      }
      const endpoints = list.map((i) => ({ addresses: [{ host: i.address, port: (this.port !== undefined ? i.ports[this.port] : undefined) ?? i.port }] }));
      this.listener(statusOrFromValue(endpoints), {}, serviceConfig, '');
    }

    updateResolution(): void {
      if (!this.view) this.start();
      else this.schedule();
    }

    destroy(): void {
      this.sub?.dispose();
      this.view?.close();
      this.sub = undefined;
      this.view = undefined;
    }
  }

  grpc.experimental.registerResolver(opts.scheme ?? 'beacon', BeaconResolver);
}
