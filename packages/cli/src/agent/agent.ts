import { isBeaconError, LIMITS, type CheckSpec, type CheckStatus, type Clock, type Instance, type Random, type Timer } from '@beacon/core';
import { HealthScheduler, isActiveKind, type FlapDampingOptions, type RegistrationInput, type RunnerFactory, type StatusChange } from '@beacon/server';
import type { AgentApi } from './api.js';
import type { AgentDefinition, FileResult } from './definitions.js';
import { DefinitionSet } from './loader.js';

/** The subset of pino the agent logs through. */
export interface AgentLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface AgentOptions {
  api: AgentApi;
  clock: Clock;
  random: Random;
  /** Builds the local check runners (the agent's own policy and script opt-in apply there). */
  runners: RunnerFactory;
  /** Reads the definition files (the config dir). Throws when the directory cannot be read. */
  load: () => Promise<FileResult[]>;
  /** Lease of every registered instance; heartbeats go out every third of it. */
  leaseTtlMs: number;
  /** Time between draining an instance and deregistering it. */
  drainGraceMs: number;
  logger: AgentLogger;
  maxInFlight?: number;
  damping?: Partial<FlapDampingOptions> | false;
}

export interface ReloadSummary {
  added: string[];
  updated: string[];
  removed: string[];
  errors: string[];
  warnings: string[];
}

/** What `status()` shows of one instance. */
export interface ManagedStatus {
  id: string;
  service: string;
  origin: string;
  state: ManagedState;
  checks: Array<{ id: string; kind: CheckSpec['kind']; status: CheckStatus | undefined }>;
}

/**
 * pending: registration not done yet (first attempt, or retrying);
 * registered: the server holds it and heartbeats are running;
 * rejected: the server refused the definition and holds no earlier version; retried at the next reload.
 */
export type ManagedState = 'pending' | 'registered' | 'rejected';

interface Managed {
  def: AgentDefinition;
  state: ManagedState;
  /** Operations on one instance (register, heartbeat, deregister) run one after another. */
  chain: Promise<void>;
  timer: Timer | undefined;
  failures: number;
  /** Active checks handed to the scheduler. */
  scheduled: Set<string>;
  /** The server refused this version of the definition; the next reload tries again. */
  refused: boolean;
  gone: boolean;
}

/** A check result while its instance is (re-)registering: the scheduler retries after the next result. */
class NotRegisteredYet extends Error {}

/** Heartbeat spread, ± this share of the interval, so instances do not beat in step. */
const JITTER = 0.1;
const RETRY_BASE_MS = 250;

/**
 * The agent's logic, free of I/O of its own: it keeps the server's view of this host's
 * services equal to the definition files. Each instance is registered with `source: 'agent'`
 * and a lease that heartbeats keep alive (a dead agent's instances expire); its active checks
 * run here, next to the service, and only status changes are reported. Reloads diff the files
 * against what is running: added definitions are registered, changed ones updated in place
 * (check state kept), removed ones drained and deregistered.
 */
export class Agent {
  private readonly instances = new Map<string, Managed>();
  /** Removals under way (drain grace), so a definition re-added meanwhile waits for them. */
  private readonly removing = new Map<string, Promise<void>>();
  private readonly checkOwner = new Map<string, Managed>();
  private readonly defs = new DefinitionSet();
  private readonly scheduler: HealthScheduler;
  private reloadChain: Promise<unknown> = Promise.resolve();
  private queuedReload: Promise<ReloadSummary> | undefined;
  private stopping: Promise<void> | undefined;

  constructor(private readonly opts: AgentOptions) {
    this.scheduler = new HealthScheduler({
      clock: opts.clock,
      random: opts.random,
      runners: opts.runners,
      ...(opts.maxInFlight ? { maxInFlight: opts.maxInFlight } : {}),
      ...(opts.damping !== undefined ? { damping: opts.damping } : {}),
      listener: {
        onStatusChange: (c) => this.publish(c),
        onError: (checkId, err) =>
          (err instanceof NotRegisteredYet ? opts.logger.debug : opts.logger.warn).call(opts.logger, { check: checkId, err: describe(err) }, 'check status not reported yet; retrying after the next result'),
      },
    });
  }

  /**
   * Reads the definition files and applies them. Concurrent calls coalesce: a reload asked for
   * while one runs happens once, after it, and sees the files as they are then. Resolves once
   * the changes are under way (registrations retry in the background while servers are down).
   */
  reload(): Promise<ReloadSummary> {
    if (this.stopping) return Promise.resolve({ added: [], updated: [], removed: [], errors: ['the agent is shutting down'], warnings: [] });
    if (this.queuedReload) return this.queuedReload;
    const p = this.reloadChain.then(() => {
      this.queuedReload = undefined;
      return this.applyFiles();
    });
    this.queuedReload = p;
    this.reloadChain = p.catch(() => undefined);
    return p;
  }

  /** Every managed instance, for logs and tests. */
  status(): ManagedStatus[] {
    return [...this.instances.values()].map((m) => ({
      id: m.def.id,
      service: m.def.body.service,
      origin: m.def.origin,
      state: m.state,
      checks: m.def.checks.map((c) => ({ id: c.id, kind: c.kind, status: this.scheduler.status(c.id) })),
    }));
  }

  /**
   * Resolves when no operation of a running instance is in flight (timers may still be armed;
   * removals waiting out their drain grace are not waited for).
   */
  async idle(): Promise<void> {
    for (;;) {
      const pending = [...this.instances.values()].map((m) => m.chain);
      await Promise.all(pending);
      const again = [...this.instances.values()].map((m) => m.chain);
      if (again.length === pending.length && again.every((p, k) => p === pending[k])) return;
    }
  }

  /**
   * SIGTERM: drains every instance, waits the grace period (heartbeats and checks go on, so the
   * lease holds), then stops the checks and deregisters. Never throws; failures are logged (the
   * lease ends the instances anyway).
   */
  shutdown(reason = 'agent shutting down'): Promise<void> {
    this.stopping ??= this.doShutdown(reason);
    return this.stopping;
  }

  private async doShutdown(reason: string): Promise<void> {
    const { logger } = this.opts;
    await this.reloadChain;
    const all = [...this.instances.values()];
    await Promise.all(all.map((m) => m.chain));
    await Promise.all(
      all
        .filter((m) => m.state === 'registered')
        .map((m) =>
          this.opts.api.drain(m.def.id, reason).then(
            () => logger.info({ instance: m.def.id }, 'draining'),
            (err: unknown) => logger.warn({ instance: m.def.id, err: describe(err) }, 'drain failed'),
          ),
        ),
    );
    if (this.opts.drainGraceMs > 0 && all.length) await this.sleep(this.opts.drainGraceMs);
    await this.scheduler.close();
    for (const m of all) {
      m.gone = true;
      m.timer?.cancel();
      m.timer = undefined;
    }
    await Promise.all([...all.map((m) => m.chain), ...this.removing.values()]);
    await Promise.all(all.map((m) => this.deregister(m)));
    this.instances.clear();
    this.checkOwner.clear();
  }

  // ---- reload ---------------------------------------------------------------------------

  private async applyFiles(): Promise<ReloadSummary> {
    const { logger } = this.opts;
    const files = await this.opts.load();
    const resolved = this.defs.apply(files);
    const errors = [...resolved.errors];
    const want = resolved.definitions;
    this.dropCheckIdClashes(want, errors);
    const summary: ReloadSummary = { added: [], updated: [], removed: [], errors, warnings: resolved.warnings };
    for (const e of errors) logger.error({}, e);
    for (const w of resolved.warnings) logger.warn({}, w);
    if (this.stopping) return summary;

    for (const [id, m] of [...this.instances]) {
      if (want.has(id)) continue;
      summary.removed.push(id);
      this.remove(m);
    }
    for (const [id, def] of want) {
      const m = this.instances.get(id);
      if (!m) {
        summary.added.push(id);
        this.add(def);
      } else if (m.def.key !== def.key || m.refused) {
        if (m.def.key !== def.key) summary.updated.push(id);
        m.def = def;
        this.indexChecks(m);
        this.enqueue(m, () => this.register(m));
      }
    }
    logger.info(
      { files: files.length, instances: this.instances.size, added: summary.added, updated: summary.updated, removed: summary.removed, errors: errors.length },
      'definitions loaded',
    );
    return summary;
  }

  /** Check ids are global on the server: a definition reusing another's check id is dropped. */
  private dropCheckIdClashes(want: Map<string, AgentDefinition>, errors: string[]): void {
    const owner = new Map<string, AgentDefinition>();
    for (const [id, def] of want) {
      const clash = def.checks.find((c) => owner.has(c.id));
      if (clash) {
        errors.push(`${def.origin}: check id ${clash.id} is already used by ${owner.get(clash.id)!.origin}; definition ignored`);
        want.delete(id);
        continue;
      }
      for (const c of def.checks) owner.set(c.id, def);
    }
  }

  private add(def: AgentDefinition): void {
    const m: Managed = { def, state: 'pending', chain: Promise.resolve(), timer: undefined, failures: 0, scheduled: new Set(), refused: false, gone: false };
    this.instances.set(def.id, m);
    this.indexChecks(m);
    const prior = this.removing.get(def.id);
    if (prior) m.chain = prior;
    this.enqueue(m, () => this.register(m));
  }

  private remove(m: Managed): void {
    this.instances.delete(m.def.id);
    m.gone = true;
    m.timer?.cancel();
    m.timer = undefined;
    for (const id of m.scheduled) this.scheduler.remove(id);
    m.scheduled.clear();
    for (const c of m.def.checks) if (this.checkOwner.get(c.id) === m) this.checkOwner.delete(c.id);
    const id = m.def.id;
    const done = m.chain.then(async () => {
      if (m.state === 'registered') {
        try {
          await this.opts.api.drain(id, `definition removed from ${m.def.file}`);
        } catch (err) {
          this.opts.logger.warn({ instance: id, err: describe(err) }, 'drain failed');
        }
        if (this.opts.drainGraceMs > 0) await this.sleep(this.opts.drainGraceMs);
      }
      await this.deregister(m);
    });
    const tracked = done.finally(() => {
      if (this.removing.get(id) === tracked) this.removing.delete(id);
    });
    this.removing.set(id, tracked);
  }

  private indexChecks(m: Managed): void {
    for (const c of m.def.checks) this.checkOwner.set(c.id, m);
  }

  // ---- one instance ---------------------------------------------------------------------

  private enqueue(m: Managed, op: () => Promise<void>): void {
    m.chain = m.chain.then(op).catch((err: unknown) => this.opts.logger.error({ instance: m.def.id, err: describe(err) }, 'agent operation failed'));
  }

  /** PUTs the current definition; on success (re)starts its checks and its heartbeats. */
  private async register(m: Managed): Promise<void> {
    if (m.gone) return;
    m.timer?.cancel();
    m.timer = undefined;
    const def = m.def;
    let answer: { instance: Instance; created: boolean };
    try {
      answer = await this.opts.api.register(this.bodyOf(m));
    } catch (err) {
      if (m.gone) return;
      if (isRetryable(err)) {
        m.failures++;
        const delay = this.retryDelay(m.failures);
        this.opts.logger.warn({ instance: def.id, origin: def.origin, err: describe(err), retryInMs: Math.round(delay) }, 'registration failed; retrying');
        this.arm(m, delay, () => this.register(m));
      } else {
        m.refused = true;
        this.opts.logger.error({ instance: def.id, origin: def.origin, err: describe(err) }, `${def.origin}: the server refused the definition; fix the file (retried at the next reload)`);
        // An update refused: the version the server holds stays alive, with its checks, until the file is fixed.
        if (m.state === 'registered') this.arm(m, this.heartbeatInterval(), () => this.beat(m));
        else m.state = 'rejected';
      }
      return;
    }
    if (m.gone) return;
    const wasRegistered = m.state === 'registered';
    m.state = 'registered';
    m.refused = false;
    m.failures = 0;
    this.opts.logger.info({ instance: def.id, service: def.body.service, origin: def.origin, created: answer.created }, wasRegistered ? 'registration updated' : 'registered');
    this.syncChecks(m, answer.instance, answer.created);
    this.arm(m, this.heartbeatInterval(), () => this.beat(m));
  }

  private async beat(m: Managed): Promise<void> {
    if (m.gone) return;
    try {
      await this.opts.api.heartbeat(m.def.id);
      m.failures = 0;
      this.arm(m, this.heartbeatInterval(), () => this.beat(m));
    } catch (err) {
      if (m.gone) return;
      if (isBeaconError(err) && (err.code === 'not_found' || err.code === 'precondition_failed')) {
        // The server forgot the instance (lease expired while we were cut off, or it restarted
        // empty): register again, carrying the checks' current statuses.
        this.opts.logger.warn({ instance: m.def.id, err: err.message }, 'the server lost the instance; registering it again');
        m.state = 'pending';
        return this.register(m);
      }
      m.failures++;
      const delay = this.retryDelay(m.failures);
      this.opts.logger.warn({ instance: m.def.id, err: describe(err), retryInMs: Math.round(delay) }, 'heartbeat failed; retrying');
      this.arm(m, delay, () => this.beat(m));
    }
  }

  private async deregister(m: Managed): Promise<void> {
    if (m.state === 'rejected') return;
    try {
      await this.opts.api.deregister(m.def.id);
      this.opts.logger.info({ instance: m.def.id }, 'deregistered');
    } catch (err) {
      if (isBeaconError(err) && err.code === 'not_found') return;
      this.opts.logger.warn({ instance: m.def.id, err: describe(err) }, 'deregister failed; the lease will end the instance');
    }
  }

  private arm(m: Managed, ms: number, op: () => Promise<void>): void {
    m.timer?.cancel();
    m.timer = this.opts.clock.setTimeout(() => {
      m.timer = undefined;
      this.enqueue(m, op);
    }, ms);
  }

  /** The registration body: the definition, the agent's lease, and the checks' known statuses. */
  private bodyOf(m: Managed): RegistrationInput {
    const body: RegistrationInput = { ...m.def.body, source: 'agent', ttlMs: this.opts.leaseTtlMs };
    if (body.checks) {
      body.checks = body.checks.map((c) => {
        const s = c.id ? this.scheduler.status(c.id) : undefined;
        // A status only seeds a check the server does not hold (re-registration after it forgot).
        return s ? { ...c, status: s } : c;
      });
    }
    return body;
  }

  /** Makes the scheduler run exactly this definition's active checks, from the statuses the server holds. */
  private syncChecks(m: Managed, stored: Instance, created: boolean): void {
    const want = new Map<string, CheckSpec>();
    for (const c of m.def.checks) if (isActiveKind(c.kind)) want.set(c.id, c);
    for (const id of [...m.scheduled]) {
      if (want.has(id)) continue;
      this.scheduler.remove(id);
      m.scheduled.delete(id);
      if (this.checkOwner.get(id) === m) this.checkOwner.delete(id);
    }
    for (const [id, spec] of want) {
      try {
        if (this.scheduler.has(id)) this.scheduler.update(spec);
        else {
          const status = stored.checks.find((c) => c.id === id)?.status;
          // New instance: check at once so it is ready as soon as it answers. Known instance
          // (agent restarted within the lease): spread the first runs over one interval.
          this.scheduler.add(spec, { ...(status ? { status } : {}), start: created ? 'now' : 'spread' });
        }
        m.scheduled.add(id);
      } catch (err) {
        this.opts.logger.error({ instance: m.def.id, check: id, err: describe(err) }, `${m.def.origin}: check ${id} cannot run here`);
      }
    }
  }

  /** Reports a status change of a check; a rejection makes the scheduler retry after the next result. */
  private async publish(c: StatusChange): Promise<void> {
    const m = this.checkOwner.get(c.checkId);
    if (!m || m.gone) return;
    if (m.state !== 'registered') throw new NotRegisteredYet(`instance ${m.def.id} is not registered yet`);
    let note = c.output;
    if (c.holdDown) note = `held down for flapping until ${new Date(c.holdDown.until).toISOString()} (${c.holdDown.reason}); last output: ${note}`;
    await this.opts.api.report(c.checkId, c.to, note.slice(0, LIMITS.checkOutput));
    this.opts.logger.info({ instance: m.def.id, check: c.checkId, from: c.from, to: c.to, output: c.output.slice(0, 200) }, 'check status reported');
  }

  private heartbeatInterval(): number {
    return (this.opts.leaseTtlMs / 3) * (1 + JITTER * (2 * this.opts.random.next() - 1));
  }

  /** Backs off from 250 ms, never waiting longer than a heartbeat interval (the lease must not lapse for it). */
  private retryDelay(failures: number): number {
    const cap = Math.min(this.opts.leaseTtlMs / 3, RETRY_BASE_MS * 2 ** Math.min(failures - 1, 16));
    return cap / 2 + (cap / 2) * this.opts.random.next();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((r) => this.opts.clock.setTimeout(r, ms));
  }
}

function isRetryable(err: unknown): boolean {
  if (!isBeaconError(err)) return true;
  return err.retryable || err.code === 'conflict';
}

function describe(err: unknown): string {
  if (isBeaconError(err)) return `${err.code}: ${err.message}`;
  return err instanceof Error ? err.message : String(err);
}
