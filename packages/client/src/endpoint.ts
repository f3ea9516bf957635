import { isIP } from 'node:net';
import type { Instance } from '@beacon/core';
import type { Endpoint } from './balancers/types.js';
import type { CircuitBreaker } from './resilience/breaker.js';
import { OutlierState } from './resilience/outlier.js';

export interface SlowStartOptions {
  /** How long a newly ready instance takes to reach its full share. */
  windowMs: number;
  /** Shape of the ramp: share ∝ (elapsed / window)^(1 / aggression); 1 is linear (default). */
  aggression?: number;
  /** Share it starts with (default 0.1), so it gets some traffic at once. */
  minFactor?: number;
}

/** Peak-EWMA decay time (Linkerd's default). */
const DEFAULT_DECAY_MS = 10_000;

/**
 * One instance as this client routes to it: registry data plus in-flight count, latency estimate,
 * slow-start ramp, circuit breaker and outlier bookkeeping. Upstreams create them.
 *
 * @example
 * for (const e of client.upstream('payments').endpoints()) console.log(e.id, e.inflight, e.latencyMs(client.clock.now()));
 */
export class EndpointState implements Endpoint {
  instance: Instance;
  inflight = 0;
  readonly outlier = new OutlierState();
  /** When it last became ready (clock ms); -Infinity for instances present at the first answer. */
  readySince: number;
  private ewma: number;
  private ewmaAt: number;
  private hostPart = '';
  private port = 0;
  private httpOrigin = '';
  private httpsOrigin = '';

  constructor(
    instance: Instance,
    private readonly portName: string | undefined,
    readonly breaker: CircuitBreaker | undefined,
    private readonly slowStart: SlowStartOptions | undefined,
    readySince: number,
    seedLatencyMs: number,
    now: number,
    private readonly decayMs = DEFAULT_DECAY_MS,
  ) {
    this.instance = instance;
    this.readySince = readySince;
    this.ewma = seedLatencyMs;
    this.ewmaAt = now;
    this.setInstance(instance);
  }

  get id(): string {
    return this.instance.id;
  }

  get zone(): string {
    return this.instance.zone;
  }

  get weight(): number {
    return this.instance.weight;
  }

  /**
   * Takes the instance's latest registry data (address, port, weight may have changed).
   *
   * @example
   * endpoint.setInstance(updated);
   */
  setInstance(i: Instance): void {
    this.instance = i;
    const port = (this.portName !== undefined ? i.ports[this.portName] : undefined) ?? i.port;
    const host = isIP(i.address) === 6 ? `[${i.address}]` : i.address;
    if (host !== this.hostPart || port !== this.port) {
      this.hostPart = host;
      this.port = port;
      this.httpOrigin = `http://${host}:${port}`;
      this.httpsOrigin = `https://${host}:${port}`;
    }
  }

  /** `host:port` to connect to. */
  get target(): { host: string; port: number } {
    return { host: this.instance.address, port: this.port };
  }

  /**
   * The origin for a request of this protocol.
   *
   * @example
   * endpoint.origin('http:'); // 'http://10.0.0.7:8080'
   */
  origin(protocol: string): string {
    return protocol === 'https:' ? this.httpsOrigin : this.httpOrigin;
  }

  /**
   * The latency estimate, decayed for the time since the last sample (Linkerd's peak EWMA): an
   * instance that was slow once is probed again after a while instead of being shunned forever.
   *
   * @example
   * endpoint.latencyMs(clock.now()); // ms
   */
  latencyMs(now?: number): number {
    if (now === undefined || now <= this.ewmaAt) return this.ewma;
    return this.ewma * Math.exp(-(now - this.ewmaAt) / this.decayMs);
  }

  /**
   * Peak EWMA: a slower sample replaces the estimate at once; faster ones pull it down with decay.
   *
   * @example
   * endpoint.observeLatency(12.5, clock.now());
   */
  observeLatency(ms: number, now: number): void {
    if (!(ms >= 0)) return;
    const current = this.latencyMs(now);
    if (ms > current) this.ewma = ms;
    else {
      const w = Math.exp(-Math.max(0, now - this.ewmaAt) / this.decayMs);
      this.ewma = this.ewma * w + ms * (1 - w);
    }
    this.ewmaAt = now;
  }

  /**
   * Slow-start share in (0, 1]: `(elapsed / window)^(1/aggression)`, at least `minFactor`.
   *
   * @example
   * endpoint.rampFactor(clock.now()); // 0.5 halfway through a linear ramp
   */
  rampFactor(now: number): number {
    const s = this.slowStart;
    if (!s) return 1;
    const elapsed = now - this.readySince;
    if (elapsed >= s.windowMs) return 1;
    const min = s.minFactor ?? 0.1;
    return Math.max(min, Math.min(1, Math.max(0, elapsed / s.windowMs) ** (1 / (s.aggression ?? 1))));
  }
}
