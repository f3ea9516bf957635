import { BeaconHttp, clockTimeout, describeFetchError, type TlsOptions } from '@beacon/client';
import { errors, type Clock, type Random } from '@beacon/core';
import type { CatalogReader } from '../catalog/types.js';
import type { RemoteDatacenter } from './config.js';
import type { FailoverPolicy } from './failover.js';
import { DcFollower, type FollowerStats } from './follower.js';
import { RemoteCatalog } from './remote-catalog.js';
import { RttProbe } from './rtt.js';

export interface FederationOptions {
  /** This server's datacenter and its catalog. */
  local: { name: string; catalog: CatalogReader };
  remotes: readonly RemoteDatacenter[];
  /** Per-service failover policies (`--failover web=nearest:2`), used when a read gives none. */
  failover?: ReadonlyMap<string, FailoverPolicy>;
  clock: Clock;
  random: Random;
  /** Sent to every remote DC as `Authorization: Bearer` unless the DC has its own (`--federate-token-file`, `$BEACON_FEDERATE_TOKEN`). */
  token?: string;
  /** Trust for `https://` remote servers (the CA of `--ca`). */
  tls?: TlsOptions;
  /** RTT pings to each remote server. Default 5 s. */
  pingIntervalMs?: number;
  /** How long a ping, a forwarded request or a silent stream may take before the remote counts as unreachable. Default 5 s for requests, 45 s of stream silence. */
  timeoutMs?: number;
  idleTimeoutMs?: number;
  logger?: { info(obj: unknown, msg?: string): void; warn(obj: unknown, msg?: string): void };
}

/** One datacenter as a reader sees it: the local one or a followed remote. */
export interface Datacenter {
  name: string;
  local: boolean;
  catalog: CatalogReader;
}

/** What `/api/v1/datacenters` reports per DC. */
export interface DatacenterStatus {
  name: string;
  local: boolean;
  /** Measured round-trip time to its nearest reachable server (0 for the local DC); absent while none answers. */
  rttMs?: number;
  index: number;
  /** Whether a full view has arrived (always true for the local DC). */
  synced: boolean;
  stale: boolean;
  staleForMs?: number;
  servers: { url: string; rttMs?: number }[];
  stream?: FollowerStats;
}

interface Remote {
  config: RemoteDatacenter;
  http: BeaconHttp;
  view: RemoteCatalog;
  probe: RttProbe;
  follower: DcFollower;
  headers: Record<string, string>;
}

/** A forwarded answer, passed back as it came (status, the headers worth keeping, raw body). */
export interface Forwarded {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

const KEPT_HEADERS = ['content-type', 'x-consul-index', 'x-consul-knownleader', 'x-consul-lastcontact'];

/**
 * The datacenters this server knows: its own, and each remote one followed over its push stream
 * into a read-only {@link RemoteCatalog}. Front ends ask it for a DC's catalog by name and get
 * the same reader interface either way; a DC never writes into another's store (only reads
 * follow streams; KV reads and writes for another DC are forwarded to it).
 */
export class Federation {
  private readonly remotes = new Map<string, Remote>();
  private readonly localDc: Datacenter;
  private readonly timeoutMs: number;

  constructor(private readonly opts: FederationOptions) {
    this.localDc = { name: opts.local.name, local: true, catalog: opts.local.catalog };
    this.timeoutMs = opts.timeoutMs ?? 5_000;
    for (const dc of opts.remotes) {
      const http = new BeaconHttp({ servers: dc.servers, clock: opts.clock, timeoutMs: this.timeoutMs, ...(opts.tls ? { tls: opts.tls } : {}) });
      const token = dc.token ?? opts.token;
      const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
      const view = new RemoteCatalog(dc.name, opts.clock);
      const probe = new RttProbe({
        http,
        clock: opts.clock,
        intervalMs: opts.pingIntervalMs ?? 5_000,
        timeoutMs: this.timeoutMs,
        headers,
        onError: (server, err) => opts.logger?.warn({ datacenter: dc.name, server, err: (err as Error).message }, 'remote datacenter server did not answer a ping'),
        // A link cut without a reset shows no error on an open stream until its idle timeout (45 s);
        // pings notice within the ping interval and timeout, and the view says it may be behind.
        onRound: () => {
          if (probe.best() === undefined) view.markStale();
          else if (follower.stats.server !== undefined) view.markCurrent();
        },
      });
      const follower = new DcFollower({
        view,
        http,
        order: () => probe.ordered(),
        clock: opts.clock,
        random: opts.random,
        headers,
        idleTimeoutMs: opts.idleTimeoutMs ?? 45_000,
        ...(opts.logger ? { logger: opts.logger } : {}),
      });
      this.remotes.set(dc.name, { config: dc, http, view, probe, follower, headers });
    }
  }

  get localName(): string {
    return this.localDc.name;
  }

  /** Starts the pings and the streams, in the background: an unreachable DC never holds up the caller. */
  start(): void {
    for (const r of this.remotes.values()) {
      void r.probe.start();
      r.follower.start();
    }
  }

  async close(): Promise<void> {
    await Promise.all(
      [...this.remotes.values()].map(async (r) => {
        await r.follower.close();
        await r.probe.close();
        r.view.close();
        await r.http.close();
      }),
    );
  }

  /** Every DC's name, the local one first, then by measured RTT (unreachable last, by name). */
  names(): string[] {
    return [this.localDc.name, ...this.remoteNamesByRtt()];
  }

  /** The remote DCs nearest first: failover's order. */
  remoteNamesByRtt(): string[] {
    const inf = Number.POSITIVE_INFINITY;
    return [...this.remotes.values()]
      .map((r) => ({ name: r.config.name, rtt: r.probe.best() ?? inf }))
      .sort((a, b) => a.rtt - b.rtt || (a.name < b.name ? -1 : 1))
      .map((x) => x.name);
  }

  /** The configured failover policy of a service, if any. */
  failoverFor(service: string): FailoverPolicy | undefined {
    return this.opts.failover?.get(service);
  }

  /**
   * The DC named `name` (undefined or empty: the local one). Unknown → `not_found` naming the
   * known ones; a remote DC whose view never arrived → `unavailable` at once, never a hang.
   */
  datacenter(name: string | undefined): Datacenter {
    if (name === undefined || name === '' || name === this.localDc.name) return this.localDc;
    const r = this.remotes.get(name);
    if (!r) throw errors.notFound(`unknown datacenter ${JSON.stringify(name)}; known: ${this.names().join(', ')}`);
    if (!r.view.synced) throw errors.unavailable(`datacenter ${name} is unreachable: no view of it has arrived yet (servers: ${r.config.servers.join(', ')})`);
    return { name, local: false, catalog: r.view };
  }

  /** Every DC's catalog, the local one first (listeners of any change anywhere). */
  catalogs(): CatalogReader[] {
    return [this.localDc.catalog, ...[...this.remotes.values()].map((r) => r.view)];
  }

  /** A remote DC's view whatever its state (failover skips the ones not synced). */
  remoteView(name: string): RemoteCatalog | undefined {
    return this.remotes.get(name)?.view;
  }

  status(): DatacenterStatus[] {
    const now = this.opts.clock.now();
    const local = this.localDc.catalog;
    return this.names().map((name): DatacenterStatus => {
      const r = this.remotes.get(name);
      if (!r) {
        return {
          name,
          local: true,
          rttMs: 0,
          index: local.index,
          synced: true,
          stale: local.stale,
          ...(local.staleSince !== undefined ? { staleForMs: now - local.staleSince } : {}),
          servers: [],
        };
      }
      const best = r.probe.best();
      return {
        name,
        local: false,
        ...(best !== undefined ? { rttMs: round(best) } : {}),
        index: r.view.index,
        synced: r.view.synced,
        stale: r.view.stale,
        ...(r.view.staleSince !== undefined ? { staleForMs: now - r.view.staleSince } : {}),
        servers: r.config.servers.map((url) => {
          const rtt = r.probe.rttOf(url);
          return { url, ...(rtt !== undefined ? { rttMs: round(rtt) } : {}) };
        }),
        stream: { ...r.follower.stats },
      };
    });
  }

  /**
   * Sends one request to a remote DC (Consul KV with `?dc=`), nearest server first, failing over
   * on network errors; the answer comes back as it is. Unreachable → `unavailable` within the
   * configured timeout.
   */
  async forward(name: string, method: string, pathAndQuery: string, body: Buffer | undefined, headers: Record<string, string>): Promise<Forwarded> {
    const r = this.remotes.get(name);
    if (!r) throw errors.notFound(`unknown datacenter ${JSON.stringify(name)}; known: ${this.names().join(', ')}`);
    pathAndQuery = withoutCallerToken(pathAndQuery);
    let last = '';
    for (const server of r.probe.ordered()) {
      const timeout = clockTimeout(this.opts.clock, this.timeoutMs, `${method} ${server}${pathAndQuery}`);
      try {
        const res = await r.http.fetch(server + pathAndQuery, {
          method,
          headers: { ...headers, ...r.headers },
          ...(body && body.length > 0 ? { body: new Uint8Array(body) } : {}),
          signal: timeout.signal,
        });
        const bytes = Buffer.from(await res.arrayBuffer());
        const kept: Record<string, string> = {};
        for (const h of KEPT_HEADERS) {
          const v = res.headers.get(h);
          if (v !== null) kept[h] = v;
        }
        return { status: res.status, headers: kept, body: bytes };
      } catch (err) {
        last = `${server}: ${timeout.signal.aborted ? `no answer within ${this.timeoutMs} ms` : describeFetchError(err, server)}`;
      } finally {
        timeout.cancel();
      }
    }
    throw errors.unavailable(`datacenter ${name} is unreachable (${last})`);
  }
}

/**
 * The caller's `?token=` is this DC's secret: it must not travel to another DC (which answers to
 * the federation token anyway), nor show in its logs.
 */
export function withoutCallerToken(pathAndQuery: string): string {
  const q = pathAndQuery.indexOf('?');
  if (q < 0) return pathAndQuery;
  const params = new URLSearchParams(pathAndQuery.slice(q + 1));
  if (!params.has('token')) return pathAndQuery;
  params.delete('token');
  const rest = params.toString();
  return pathAndQuery.slice(0, q) + (rest === '' ? '' : `?${rest}`);
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
