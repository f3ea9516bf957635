import { Agent, type Response } from 'undici';
import { EventEmitter, type Event } from 'cockatiel';
import { errors, systemRandom, type Clock, type Instance, type Random } from '@beacon/core';
import { BeaconHttp, type TlsOptions } from './http.js';
import { HttpDiscoveryTransport, ViewSync, type DiscoveryTransport, type ViewSyncOptions } from './discovery.js';
import { resolveFilter, type DiscoverFilter } from './filter.js';
import { ServiceView } from './view.js';
import { registerInstance, type InstanceInput, type RegisterOptions, type Registration } from './registration.js';
import { Upstream, type ServicePolicy } from './upstream.js';
import { BeaconDispatcher, defaultIsService, type UpstreamSource } from './dispatcher.js';
import { beaconFetch, type BeaconRequestInit, type FetchSource } from './fetch.js';
import { preciseClock } from './time.js';
import type { EndpointState } from './endpoint.js';

export interface ClientOptions {
  /** Beacon servers (`http://host:port` or `https://host:port`), tried in order with failover. */
  servers: string[];
  /** For `https://` servers: the CA that signed their certificates, and a client certificate if they verify clients (PEM contents). */
  tls?: TlsOptions;
  /**
   * An ACL token's SecretID, for servers run with `--acl`: sent as `Authorization: Bearer …` on
   * every call to Beacon (registration, heartbeats, discovery and its watch streams).
   *
   * @example
   * const client = createClient({ servers: ['http://10.0.0.5:8500'], token: process.env.BEACON_TOKEN });
   */
  token?: string;
  /** This caller's zone, for zone-aware balancing. */
  zone?: string;
  /** Policies for every service (each field has a default). */
  defaults?: ServicePolicy;
  /** Policies per service name, merged over `defaults`. */
  services?: Record<string, ServicePolicy>;
  /** How views follow the registry. */
  discovery?: Omit<ViewSyncOptions, 'clock' | 'random' | 'onError'>;
  /** Which URL hosts are service names (default: a bare DNS label other than `localhost`). */
  isService?: (host: string) => boolean;
  /** Options of the undici Agent behind `client.dispatcher` (connection pools per instance). */
  agent?: Agent.Options;
  /** Timeout of calls to the Beacon API (default 10 s). */
  requestTimeoutMs?: number;
  /** Time and randomness, injected (defaults: {@link preciseClock}, Math.random). */
  clock?: Clock;
  random?: Random;
  /** Replaces the HTTP transport of views (tests). */
  transport?: DiscoveryTransport;
}

/** A background failure, reported rather than swallowed. */
export interface ClientErrorEvent {
  where: 'discovery' | 'registration';
  service: string;
  error: Error;
}

/** One admitted request for transports the SDK does not wrap (see {@link BeaconClient.acquire}). */
export interface Lease {
  readonly instance: Instance;
  readonly address: string;
  readonly port: number;
  /** Report the answer's status (5xx counts as a failure) and end the lease. */
  done(status: number): void;
  /** Report a failure (connection refused, reset, timeout…) and end the lease. */
  fail(err: unknown): void;
}

/**
 * The SDK's entry point: registration, discovery, balancing and resilient calls against one
 * Beacon cluster. Build it with {@link createClient}; close it when done.
 *
 * @example
 * const client = createClient({ servers: ['http://127.0.0.1:8500'] });
 * const res = await client.fetch('http://payments/health');
 * await client.close();
 */
export class BeaconClient implements UpstreamSource, FetchSource {
  readonly http: BeaconHttp;
  readonly clock: Clock;
  readonly random: Random;
  /**
   * An undici dispatcher that resolves `http://<service>/…` through Beacon:
   * `fetch('http://payments/charge', { dispatcher: client.dispatcher })` (undici's fetch or
   * request; Node's global fetch accepts it too).
   */
  readonly dispatcher: BeaconDispatcher;
  private readonly agent: Agent;
  private readonly upstreams = new Map<string, Upstream>();
  private readonly views = new Set<ServiceView>();
  private readonly transport: DiscoveryTransport;
  private readonly errorEmitter = new EventEmitter<ClientErrorEvent>();
  private closed = false;
  private readonly isServiceHost: (host: string) => boolean;

  /**
   * Background failures (a lost watch stream, a failed heartbeat): log them.
   *
   * @example
   * client.onError((e) => console.warn(`beacon ${e.where} ${e.service}: ${e.error.message}`));
   */
  readonly onError: Event<ClientErrorEvent> = this.errorEmitter.addListener;

  constructor(private readonly opts: ClientOptions) {
    if (!opts || !Array.isArray(opts.servers) || opts.servers.length === 0) throw errors.invalid('createClient needs { servers: ["http://host:port", …] }');
    this.clock = opts.clock ?? preciseClock;
    this.random = opts.random ?? systemRandom;
    this.http = new BeaconHttp({ servers: opts.servers, clock: this.clock, ...(opts.requestTimeoutMs ? { timeoutMs: opts.requestTimeoutMs } : {}), ...(opts.tls ? { tls: opts.tls } : {}), ...(opts.token ? { token: opts.token } : {}) });
    this.transport = opts.transport ?? new HttpDiscoveryTransport(this.http);
    this.isServiceHost = opts.isService ?? defaultIsService;
    this.agent = new Agent({ keepAliveTimeout: 10_000, ...opts.agent });
    this.dispatcher = new BeaconDispatcher(this.agent, this);
  }

  /**
   * Whether a URL host is resolved through Beacon.
   *
   * @example
   * client.isService('payments'); // true — client.isService('127.0.0.1'); // false
   */
  isService(host: string): boolean {
    return this.isServiceHost(host);
  }

  /**
   * Registers this process's instance with a lease and keeps it alive (see {@link Registration}).
   *
   * @example
   * const reg = await client.register({ service: 'payments', address: '127.0.0.1', port: 8080 }, { ttlMs: 10_000 });
   * closeOnSignals([reg, httpServerCloser, client]);
   */
  async register(instance: InstanceInput, opts: RegisterOptions = {}): Promise<Registration> {
    this.assertOpen();
    const reg = await registerInstance({ http: this.http, clock: this.clock, random: this.random }, instance, opts);
    reg.onEvent((e) => {
      if (e.type === 'error') this.errorEmitter.emit({ where: 'registration', service: instance.service, error: e.error });
    });
    return reg;
  }

  /**
   * A live view of a service's instances, kept current by Beacon's push stream (blocking reads
   * as fallback). It keeps its last known good answer — flagged `stale` — while no server
   * answers. Close it when done (or close the client).
   *
   * @example
   * const view = client.discover('payments', { tags: ['v2'] });
   * await view.ready();
   * view.onChange((events) => events.forEach((e) => console.log(e.type, e.instance.id)));
   */
  discover(service: string, filter?: DiscoverFilter): ServiceView {
    this.assertOpen();
    const view = new ServiceView(service, resolveFilter(filter));
    this.track(view);
    return view;
  }

  /**
   * The routing state of a service (created on first use with its policy): balancer, endpoints,
   * breakers, budget. Mostly for transports and introspection.
   *
   * @example
   * client.upstream('payments').endpoints().map((e) => [e.id, e.inflight, e.latencyMs()]);
   *
   * A `route` gets routing state of its own for the same service — its own policy merged over the
   * service's, its own subset filter, balancer, breakers and budget — as a proxy route or a
   * canary subset needs (`route.key` names it; the same key returns the same upstream).
   *
   * @example
   * client.upstream('payments', { key: 'canary', policy: { filter: { tags: ['v2'] } } });
   */
  upstream(service: string, route?: { key: string; policy: ServicePolicy }): Upstream {
    const key = route ? `${service}#${route.key}` : service;
    let up = this.upstreams.get(key);
    if (up) return up;
    this.assertOpen();
    const policy = route ? { ...this.policyFor(service), ...route.policy } : this.policyFor(service);
    const userFilter = resolveFilter(policy.filter);
    // The view keeps not-ready instances too: zone-aware routing needs to know a zone's size.
    const view = new ServiceView(service, { ...userFilter, passing: false });
    up = new Upstream(service, view, policy, { clock: this.clock, random: this.random, zone: this.opts.zone ?? '' }, userFilter);
    this.upstreams.set(key, up);
    this.track(view);
    return up;
  }

  /**
   * Resilient `fetch` to a service: `client.fetch('http://payments/charge', init)` — see
   * {@link beaconFetch} for the policies applied. Per-call options go under `init.beacon`.
   *
   * @example
   * const res = await client.fetch('http://payments/charge', {
   *   method: 'POST', body: JSON.stringify(order), headers: { 'content-type': 'application/json', 'idempotency-key': order.id },
   * });
   */
  fetch(input: string | URL, init?: BeaconRequestInit): Promise<Response> {
    return beaconFetch(this, input, init);
  }

  /**
   * Picks an instance for a transport the SDK does not wrap (a database driver, raw TCP) and
   * admits the request through its breaker. Report how it went with `done` or `fail`.
   * `timeoutMs` and `signal` bound the wait for discovery's first answer about the service.
   *
   * @example
   * const lease = await client.acquire('cache', { timeoutMs: 500 });
   * try { const v = await get(lease.address, lease.port, key); lease.done(200); } catch (e) { lease.fail(e); throw e; }
   */
  async acquire(service: string, opts: { key?: string; timeoutMs?: number; signal?: AbortSignal } = {}): Promise<Lease> {
    const up = this.upstream(service);
    await up.whenReady(opts.signal, opts.timeoutMs);
    const ep: EndpointState = up.pick(opts.key);
    up.started(ep);
    const t0 = this.clock.now();
    let over = false;
    const end = (f: () => void) => {
      if (over) return;
      over = true;
      f();
      up.finished(ep);
    };
    return {
      instance: ep.instance,
      address: ep.target.host,
      port: ep.target.port,
      done: (status) => end(() => up.responded(ep, status, this.clock.now() - t0)),
      fail: (err) => end(() => void up.failed(ep, err, this.clock.now() - t0)),
    };
  }

  /**
   * Closes every view and connection pool. Registrations are not touched: close them first
   * (they drain and deregister), e.g. with {@link closeOnSignals}.
   *
   * @example
   * await reg.close();
   * await client.close();
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const up of this.upstreams.values()) up.close();
    for (const v of this.views) v.close();
    this.views.clear();
    await Promise.all([this.agent.close(), this.http.close()]);
  }

  private policyFor(service: string): ServicePolicy {
    return { ...this.opts.defaults, ...this.opts.services?.[service] };
  }

  private track(view: ServiceView): void {
    this.views.add(view);
    view.onClose(() => this.views.delete(view));
    const { discovery } = this.opts;
    void new ViewSync(view, this.transport, {
      ...discovery,
      clock: this.clock,
      random: this.random,
      onError: (error) => this.errorEmitter.emit({ where: 'discovery', service: view.service, error }),
    }).start();
  }

  private assertOpen(): void {
    if (this.closed) throw errors.unavailable('the Beacon client is closed');
  }
}

/**
 * Creates a client for one Beacon cluster (several servers for failover).
 *
 * @example
 * import { createClient } from '@beacon/client';
 * const client = createClient({ servers: ['http://10.0.0.1:8500', 'http://10.0.0.2:8500'], zone: 'eu-1' });
 * const res = await client.fetch('http://payments/health');
 */
export function createClient(opts: ClientOptions): BeaconClient {
  return new BeaconClient(opts);
}
