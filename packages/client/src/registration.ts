import { EventEmitter, type Event } from 'cockatiel';
import { BeaconError, errors, isBeaconError, type CheckInput as CoreCheckInput, type Clock, type Instance, type Random, type RegistrationInput, type Timer } from '@beacon/core';
import type { BeaconHttp } from './http.js';
import { sleep } from './time.js';

/** A check as a registration may give it (the same type the server validates). */
export type CheckInput = CoreCheckInput;

/**
 * What an instance announces about itself. `id` defaults to `<service>-<address>-<port>` (stable
 * across restarts on the same address and port); the lease comes from {@link RegisterOptions.ttlMs}.
 */
export type InstanceInput = Omit<RegistrationInput, 'ttlMs' | 'source'>;

export interface RegisterOptions {
  /** Lease length: Beacon drops the instance when no heartbeat arrives within it (default 10 s, at least 1 s). */
  ttlMs?: number;
  /** Heartbeat every `ttlMs × heartbeatFraction` (default 1/3, so two heartbeats may be lost). */
  heartbeatFraction?: number;
  /** Spread of each interval, ± this share (default 0.1), so a fleet started together does not beat in step. */
  jitter?: number;
  /** How long `close()` waits between draining and deregistering (default 5 s). */
  drainGraceMs?: number;
}

/** What a registration reports about itself. */
export type RegistrationEvent =
  | { type: 'registered'; instance: Instance; created: boolean }
  | { type: 'reregistered'; instance: Instance; reason: string }
  | { type: 'heartbeat'; remainingMs: number }
  | { type: 'error'; error: Error; during: 'heartbeat' | 'register' | 'drain' | 'deregister' }
  | { type: 'draining' }
  | { type: 'deregistered' };

interface Deps {
  http: Pick<BeaconHttp, 'request'>;
  clock: Clock;
  random: Random;
}

/**
 * A live registration: it keeps the instance's lease alive with jittered heartbeats, registers
 * again when Beacon has forgotten the instance (404: lease expired, server restarted with an empty
 * store), and on `close()` drains, waits out the grace period, then deregisters.
 *
 * @example
 * const reg = await client.register({ service: 'payments', address: '10.0.0.7', port: 8080 }, { ttlMs: 10_000 });
 * reg.onEvent((e) => e.type === 'reregistered' && log.info('Beacon had forgotten us'));
 */
export class Registration {
  private current: Instance;
  private timer: Timer | undefined;
  private failures = 0;
  private state: 'active' | 'draining' | 'closed' = 'active';
  private closing: Promise<void> | undefined;
  private beating: Promise<void> | undefined;
  private readonly emitter = new EventEmitter<RegistrationEvent>();
  private readonly ttlMs: number;
  private readonly fraction: number;
  private readonly jitter: number;
  private readonly graceMs: number;

  /**
   * Everything the registration does, for logs and metrics.
   *
   * @example
   * reg.onEvent((e) => { if (e.type === 'error') log.warn(e.error, `beacon ${e.during} failed`); });
   */
  readonly onEvent: Event<RegistrationEvent> = this.emitter.addListener;

  /** Use {@link registerInstance} or `client.register()`. */
  constructor(
    private readonly deps: Deps,
    private readonly input: InstanceInput,
    opts: RegisterOptions,
    first: Instance,
  ) {
    this.current = first;
    this.ttlMs = opts.ttlMs ?? 10_000;
    this.fraction = opts.heartbeatFraction ?? 1 / 3;
    this.jitter = opts.jitter ?? 0.1;
    this.graceMs = opts.drainGraceMs ?? 5_000;
    this.schedule(this.interval());
  }

  /** The instance id (given, or derived by the server). */
  get id(): string {
    return this.current.id;
  }

  /** The instance as Beacon last answered it. */
  get instance(): Instance {
    return this.current;
  }

  /** `active`, `draining` (close() under way) or `closed`. */
  get status(): 'active' | 'draining' | 'closed' {
    return this.state;
  }

  /**
   * Drains the instance (clients stop sending it new requests), waits the grace period so
   * requests already under way finish, then deregisters. Safe to call twice; never throws:
   * failures are reported as `error` events (the lease expires by itself anyway).
   *
   * @example
   * process.once('SIGTERM', async () => { await reg.close(); server.close(); });
   */
  close(opts: { graceMs?: number; reason?: string } = {}): Promise<void> {
    this.closing ??= this.shutdown(opts.graceMs ?? this.graceMs, opts.reason ?? 'shutting down');
    return this.closing;
  }

  private async shutdown(graceMs: number, reason: string): Promise<void> {
    this.state = 'draining';
    const path = `/api/v1/instances/${encodeURIComponent(this.id)}`;
    try {
      await this.deps.http.request('PUT', `${path}/drain`, { body: { reason, enable: true } });
      this.emitter.emit({ type: 'draining' });
    } catch (err) {
      this.emitter.emit({ type: 'error', error: err as Error, during: 'drain' });
    }
    // Heartbeats go on during the grace period (a grace longer than the lease must not lose it).
    if (graceMs > 0) await sleep(this.deps.clock, graceMs);
    this.timer?.cancel();
    this.state = 'closed';
    await this.beating;
    try {
      await this.deps.http.request('DELETE', path);
    } catch (err) {
      if (!(isBeaconError(err) && err.code === 'not_found')) this.emitter.emit({ type: 'error', error: err as Error, during: 'deregister' });
    }
    this.emitter.emit({ type: 'deregistered' });
  }

  private interval(): number {
    const base = this.ttlMs * this.fraction;
    return base * (1 + this.jitter * (2 * this.deps.random.next() - 1));
  }

  /** After a failed heartbeat: retry sooner, backing off, but never later than the normal interval. */
  private retryDelay(): number {
    const cap = Math.min(this.ttlMs * this.fraction, 250 * 2 ** Math.min(this.failures - 1, 16));
    return cap / 2 + (cap / 2) * this.deps.random.next();
  }

  private schedule(ms: number): void {
    if (this.state === 'closed') return;
    this.timer = this.deps.clock.setTimeout(() => {
      this.beating = this.beat().finally(() => (this.beating = undefined));
    }, ms);
  }

  private async beat(): Promise<void> {
    if (this.state === 'closed') return;
    try {
      const { body } = await this.deps.http.request<{ ttlMs: number; remainingMs: number }>('PUT', `/api/v1/instances/${encodeURIComponent(this.id)}/heartbeat`);
      this.failures = 0;
      this.emitter.emit({ type: 'heartbeat', remainingMs: body?.remainingMs ?? this.ttlMs });
    } catch (err) {
      const gone = isBeaconError(err) && (err.code === 'not_found' || err.code === 'precondition_failed');
      if (gone && this.state === 'active') {
        try {
          const inst = await putInstance(this.deps.http, { ...this.input, id: this.id }, this.ttlMs);
          this.current = inst.instance;
          this.failures = 0;
          this.emitter.emit({ type: 'reregistered', instance: inst.instance, reason: (err as Error).message });
        } catch (regErr) {
          this.failures++;
          this.emitter.emit({ type: 'error', error: regErr as Error, during: 'register' });
          return this.schedule(this.retryDelay());
        }
      } else if (!gone) {
        this.failures++;
        this.emitter.emit({ type: 'error', error: err as Error, during: 'heartbeat' });
        return this.schedule(this.retryDelay());
      }
    }
    this.schedule(this.interval());
  }
}

async function putInstance(http: Pick<BeaconHttp, 'request'>, input: InstanceInput, ttlMs: number): Promise<{ instance: Instance; created: boolean }> {
  const { body } = await http.request<{ index: number; created: boolean; instance: Instance }>('PUT', '/api/v1/instances', { body: { ...input, ttlMs } });
  if (!body?.instance?.id) throw new BeaconError('internal', 'registration answer carried no instance');
  return body;
}

/**
 * Registers an instance with a lease and returns the handle that keeps it alive. Prefer
 * `client.register()`, which supplies the HTTP client, clock and randomness.
 *
 * @example
 * const reg = await registerInstance({ http, clock: systemClock, random: systemRandom },
 *   { service: 'payments', address: '127.0.0.1', port: 8080 }, { ttlMs: 10_000 });
 */
export async function registerInstance(deps: Deps, input: InstanceInput, opts: RegisterOptions = {}): Promise<Registration> {
  const ttlMs = opts.ttlMs ?? 10_000;
  if (!Number.isFinite(ttlMs) || ttlMs < 1_000) throw errors.invalid('ttlMs must be at least 1000 ms');
  const fraction = opts.heartbeatFraction ?? 1 / 3;
  if (!(fraction > 0 && fraction < 1)) throw errors.invalid('heartbeatFraction must be between 0 and 1');
  const jitter = opts.jitter ?? 0.1;
  if (!(jitter >= 0 && jitter < 1)) throw errors.invalid('jitter must be in [0, 1)');
  if (opts.drainGraceMs !== undefined && !(opts.drainGraceMs >= 0)) throw errors.invalid('drainGraceMs must be ≥ 0');
  const first = await putInstance(deps.http, input, ttlMs);
  const reg = new Registration(deps, input, { ...opts, ttlMs }, first.instance);
  return reg;
}

/** Anything with an async close: registrations, HTTP servers (wrapped), the client. */
export interface Closable {
  close(): unknown;
}

export interface SignalOptions {
  /** Default `['SIGTERM', 'SIGINT']`. */
  signals?: NodeJS.Signals[];
  /** Called once everything is closed (default `process.exit`), with 0, or 1 if a close threw. */
  exit?: (code: number) => void;
  /** The process to listen on (tests pass an EventEmitter). */
  process?: Pick<NodeJS.Process, 'once' | 'removeListener'>;
}

/**
 * On the first of `signals`, closes everything in order — put registrations first, so the
 * instance drains and deregisters while its server still answers — then exits.
 * Returns a disposable that removes the listeners.
 *
 * @example
 * const reg = await client.register({ service: 'payments', address: '127.0.0.1', port });
 * closeOnSignals([reg, { close: () => new Promise((r) => server.close(r)) }, client]);
 */
export function closeOnSignals(closables: readonly Closable[], opts: SignalOptions = {}): { dispose(): void } {
  const proc = opts.process ?? process;
  const signals = opts.signals ?? ['SIGTERM', 'SIGINT'];
  const exit = opts.exit ?? ((code: number) => process.exit(code));
  let fired = false;
  const handler = async () => {
    if (fired) return;
    fired = true;
    dispose();
    let code = 0;
    for (const c of closables) {
      try {
        await c.close();
      } catch {
        code = 1;
      }
    }
    exit(code);
  };
  const dispose = () => {
    for (const s of signals) proc.removeListener(s, handler);
  };
  for (const s of signals) proc.once(s, handler);
  return { dispose };
}
