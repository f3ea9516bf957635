import type { Check, CheckSpec, Clock, Random } from '@beacon/core';
import type { CatalogView } from '../catalog/view.js';
import type { Registry, RegistryLogger } from '../registry/registry.js';
import type { FlapDampingOptions } from './flap.js';
import { HealthScheduler, type CheckExplain, type RunTiming, type StatusChange } from './scheduler.js';
import { isActiveKind, type ActiveCheckKind, type CheckResult, type RunnerFactory } from './types.js';

export interface ActiveChecksOptions {
  catalog: CatalogView;
  registry: Pick<Registry, 'setCheckStatus' | 'noteResult'>;
  clock: Clock;
  random: Random;
  runners: RunnerFactory;
  maxInFlight?: number;
  damping?: Partial<FlapDampingOptions> | false;
  logger?: RegistryLogger;
  /** Every result with its timing (benchmarks, metrics). */
  onResult?: (checkId: string, result: CheckResult, timing: RunTiming, kind: ActiveCheckKind) => void;
  /** Clustered mode: whether this server runs a check (exactly one live server does). Default: all. */
  owns?: (checkId: string) => boolean;
}

/**
 * Keeps the scheduler in line with the catalog: every active check of every instance and node runs
 * here, except those of agent-registered instances (their agent runs them next to the service and
 * reports). Status changes go to the registry, which writes only on change.
 */
export class ActiveChecks {
  private readonly scheduler: HealthScheduler;
  /** instance id → (check id → the spec as last given to the scheduler). */
  private readonly tracked = new Map<string, Map<string, string>>();
  /** Node-level checks (check id → spec key), run here like an instance's. */
  private readonly nodeChecks = new Map<string, string>();
  private unsubscribe: (() => void) | undefined;

  constructor(private readonly opts: ActiveChecksOptions) {
    const { registry, logger } = opts;
    this.scheduler = new HealthScheduler({
      clock: opts.clock,
      random: opts.random,
      runners: opts.runners,
      ...(opts.maxInFlight ? { maxInFlight: opts.maxInFlight } : {}),
      ...(opts.damping !== undefined ? { damping: opts.damping } : {}),
      listener: {
        onStatusChange: (c: StatusChange) => registry.setCheckStatus(c.checkId, c.to, c.output, why(c), c.holdDown ? { until: c.holdDown.until, reason: c.holdDown.reason } : undefined),
        onResult: (id, result, timing, kind) => {
          registry.noteResult(id, result.status, result.output);
          opts.onResult?.(id, result, timing, kind);
        },
        onError: (id, err) => logger?.warn({ err, check: id }, 'active check failed to report'),
      },
    });
  }

  start(): void {
    this.unsubscribe = this.opts.catalog.onChange((c) => {
      if (c.reset) this.reconcileAll('spread');
      else {
        for (const id of c.instanceIds) this.reconcile(id, 'now');
        this.reconcileNodeChecks('now');
      }
    });
    // Checks already stored (a restart) are spread over one interval rather than fired together.
    this.reconcileAll('spread');
  }

  async close(): Promise<void> {
    this.unsubscribe?.();
    await this.scheduler.close();
  }

  /** Clustered mode: ownership moved; drop checks now owned elsewhere, start newly owned ones within one interval. */
  rebalance(): void {
    this.reconcileAll('spread');
  }

  explain(checkId: string): CheckExplain | undefined {
    return this.scheduler.explain(checkId);
  }

  get stats() {
    return this.scheduler.stats();
  }

  private reconcileAll(start: 'now' | 'spread'): void {
    const seen = new Set<string>();
    for (const s of this.opts.catalog.services()) {
      for (const i of this.opts.catalog.service(s.name).instances) {
        seen.add(i.id);
        this.reconcile(i.id, start);
      }
    }
    for (const id of [...this.tracked.keys()]) if (!seen.has(id)) this.reconcile(id, start);
    this.reconcileNodeChecks(start);
  }

  private reconcileNodeChecks(start: 'now' | 'spread'): void {
    const want = new Map<string, Check>();
    for (const r of this.opts.catalog.allNodeChecks()) if (this.runsHere(r.check)) want.set(r.check.id, r.check);
    this.sync(this.nodeChecks, want, start);
  }

  private runsHere(c: Check): boolean {
    return isActiveKind(c.kind) && (this.opts.owns?.(c.id) ?? true);
  }

  private reconcile(instanceId: string, start: 'now' | 'spread'): void {
    const inst = this.opts.catalog.instance(instanceId);
    const want = new Map<string, Check>();
    if (inst && inst.source !== 'agent') for (const c of inst.checks) if (this.runsHere(c)) want.set(c.id, c);
    const have = this.tracked.get(instanceId) ?? new Map<string, string>();
    this.sync(have, want, start);
    if (have.size) this.tracked.set(instanceId, have);
    else this.tracked.delete(instanceId);
  }

  /** Brings the scheduler from the checks `have` (id → spec key, updated in place) to those wanted. */
  private sync(have: Map<string, string>, want: Map<string, Check>, start: 'now' | 'spread'): void {
    for (const id of have.keys()) {
      if (want.has(id)) continue;
      this.scheduler.remove(id);
      have.delete(id);
    }
    for (const [id, c] of want) {
      const key = specKey(c);
      if (have.get(id) === key) continue;
      const isNew = !have.has(id);
      have.set(id, key);
      this.scheduler.add(specOnly(c), { status: c.status, start: isNew ? start : 'now' });
    }
  }
}

function why(c: StatusChange): string {
  switch (c.cause) {
    case 'result':
      return 'check result';
    case 'hold_down':
      return `held down for flapping${c.holdDown ? `: ${c.holdDown.reason}` : ''}`;
    case 'hold_down_end':
      return 'hold-down ended';
  }
}

/** The definition alone: status fields change on every write and must not look like a new spec. */
function specOnly(c: Check): CheckSpec {
  const { status: _s, output: _o, since: _n, holdDown: _h, ...spec } = c;
  return spec;
}

function specKey(c: Check): string {
  return JSON.stringify(specOnly(c));
}
