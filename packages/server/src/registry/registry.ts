import {
  errors,
  isBeaconError,
  assertNodeName,
  LIMITS,
  type Check,
  type CheckSpec,
  type CheckStatus,
  type ChangeNote,
  type Clock,
  type DeregisterCause,
  type Instance,
  type InstanceRecord,
  type Timer,
} from '@beacon/core';
import { parseNodeCheckRecord, type CatalogView, type NodeCheckRecord, type Tombstone } from '../catalog/view.js';
import { KEYS } from '../keys.js';
import type { KeyValue, LeaseId, Store } from '../store/types.js';
import { PerInstanceLeases, type HeartbeatResult, type InstanceLeases } from './leases.js';
import { normalizeNodeCheck, normalizeRegistration, type CheckInput, type NormalizedRegistration, type RegistrationInput } from './normalize.js';

export interface RegistryLogger {
  info(obj: unknown, msg?: string): void;
  warn(obj: unknown, msg?: string): void;
  error(obj: unknown, msg?: string): void;
}

export interface RegistryOptions {
  store: Store;
  catalog: CatalogView;
  clock: Clock;
  logger?: RegistryLogger;
  /** Node name given to instances that name none. */
  nodeName: string;
  /** Status of a new check until its first result. Default: critical ("not ready until the first result"). */
  initialCheckStatus?: CheckStatus;
  /** How long tombstones of deliberate deregistrations are kept for `explain`. Default 1 h. */
  tombstoneRetentionMs?: number;
  /** Validates a registration's checks before anything is written (target allow-list, script policy). */
  checkPolicy?: (reg: CheckPolicySubject, scope: CheckTargetScope) => void;
  /**
   * Clustered mode: whether this server runs an instance's timers (TTL-check expiry, deregister
   * after critical), so that exactly one live server does. Default: all of them (one server).
   */
  owns?: (instanceId: string) => boolean;
  /** Clustered mode: tells the owner of a TTL check that a report for it reached this server. */
  relayTtlReport?: (checkId: string) => Promise<void>;
  /** How instance TTLs map to store leases. Default: one store lease per instance. */
  leases?: InstanceLeases;
}

/** What the check policy judges: the checks, the address they are meant to probe, and who runs them. */
export interface CheckPolicySubject {
  spec: Pick<InstanceRecord, 'address' | 'source'>;
  checks: readonly CheckSpec[];
}

/**
 * How far a registration's active checks may reach: the instance's own address (and the ranges
 * of `--check-allow`), or `anywhere` the dial policy allows, for a caller trusted with it (a
 * token with operator:write).
 */
export type CheckTargetScope = 'instance' | 'anywhere';

export interface RegisterOptions {
  mayReplace?: (prev: InstanceRecord) => void;
  checkTargets?: CheckTargetScope;
}

export interface WriteResult {
  index: number;
}

export interface RegisterResult extends WriteResult {
  instance: Instance;
  created: boolean;
}

export type { HeartbeatResult } from './leases.js';

/** Latest output of a check, kept in memory because a run that changes nothing writes nothing. */
export interface LiveOutput {
  status: CheckStatus;
  output: string;
  at: number;
}

const CAS_ATTEMPTS = 8;
const AWAITING = 'awaiting first result';

/**
 * The domain: validates, applies the rules and writes through the Store. It knows no HTTP or DNS.
 * Reads come from the catalog view; every write waits until the view has applied it, so a
 * caller reads its own writes.
 */
export class Registry {
  private readonly ttlTimers = new Map<string, Timer>();
  /** The ids in `ttlTimers` that are node checks, so dropping theirs never scans every instance's. */
  private readonly nodeTtl = new Set<string>();
  private readonly criticalTimers = new Map<string, { since: number; timer: Timer }>();
  private readonly outputs = new Map<string, LiveOutput>();
  private pruneTimer: Timer | undefined;
  private unsubscribe: (() => void) | undefined;
  private closed = false;
  private readonly leases: InstanceLeases;

  constructor(private readonly opts: RegistryOptions) {
    this.leases = opts.leases ?? new PerInstanceLeases(opts.store, opts.logger);
  }

  /** Arms timers for what the catalog already holds (after a restart: full TTL of grace). */
  start(): void {
    this.unsubscribe = this.opts.catalog.onChange((c) => {
      if (c.reset) for (const s of this.opts.catalog.services()) for (const i of this.opts.catalog.service(s.name).instances) this.reconcile(i.id);
      else for (const id of c.instanceIds) this.reconcile(id);
      this.reconcileNodeChecks();
    });
    for (const s of this.opts.catalog.services()) for (const i of this.opts.catalog.service(s.name).instances) this.reconcile(i.id);
    this.reconcileNodeChecks();
    this.schedulePrune(0);
  }

  close(): void {
    this.closed = true;
    this.unsubscribe?.();
    for (const t of this.ttlTimers.values()) t.cancel();
    for (const t of this.criticalTimers.values()) t.timer.cancel();
    this.ttlTimers.clear();
    this.criticalTimers.clear();
    this.pruneTimer?.cancel();
  }

  // ---- registration --------------------------------------------------------------------

  /**
   * @param opts.mayReplace called with the record the registration would overwrite, inside the
   *   compare-and-set loop (so no write can slip in between): throwing refuses the registration.
   *   The ACL check that an instance id of one service cannot be taken over by another uses it.
   * @param opts.checkTargets how far its active checks may reach (default: the instance itself).
   */
  async register(input: RegistrationInput, opts: RegisterOptions = {}): Promise<RegisterResult> {
    const reg = normalizeRegistration(input, { node: this.opts.nodeName });
    this.opts.checkPolicy?.(reg, opts.checkTargets ?? 'instance');
    const { spec } = reg;
    const key = KEYS.instance(spec.id);
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      // An id the catalog does not hold is written without reading it first: the compare
      // (`exists: false`) is the check, so a catalog that lags the store costs one failed
      // attempt, never a lost record. In clustered mode the read is a round trip to etcd.
      const kv = attempt === 0 && this.opts.catalog.instance(spec.id) === undefined ? undefined : await this.opts.store.get(key);
      const prev = kv ? parseRecord(kv) : undefined;
      if (prev) opts.mayReplace?.(prev);
      const now = this.opts.clock.now();
      const checks = this.mergeChecks(prev?.checks ?? [], reg, now);
      const record: InstanceRecord = {
        ...spec,
        checks,
        registeredAt: prev?.registeredAt ?? now,
        change: { kind: prev ? 'updated' : 'registered', reason: prev ? 'registration updated' : `registered by ${spec.source}`, at: now },
      };
      // Maintenance is an operator's decision and survives re-registration; draining belongs to the old process.
      if (prev?.maintenance) record.maintenance = prev.maintenance;

      const lease = spec.ttlMs === undefined ? { id: 0, fresh: false } : await this.leases.acquire(spec.id, spec.ttlMs, kv && { lease: kv.lease, ttlMs: prev?.ttlMs });
      if (prev && kv && lease.id === kv.lease && sameRecord(prev, record)) {
        return { index: kv.modRevision, instance: this.opts.catalog.instance(spec.id) ?? this.mustInstance(spec.id), created: false };
      }
      const res = await this.opts.store.txn({
        compare: [kv ? { key, target: 'modRevision', op: 'equal', value: kv.modRevision } : { key, target: 'exists', value: false }],
        success: [
          { type: 'put', key, value: JSON.stringify(record), ...(lease.id ? { lease: lease.id } : {}) },
          { type: 'delete', key: KEYS.tombstone(spec.id) },
        ],
      });
      if (!res.succeeded) {
        await this.leases.abandon(lease);
        continue;
      }
      if (spec.ttlMs !== undefined) this.leases.written(spec.id, lease.id, spec.ttlMs);
      if (kv?.lease && kv.lease !== lease.id) await this.leases.released(spec.id, kv.lease);
      await this.opts.catalog.waitForIndex(res.revision);
      this.opts.logger?.info({ id: spec.id, service: spec.service, index: res.revision }, prev ? 'instance updated' : 'instance registered');
      return { index: res.revision, instance: this.mustInstance(spec.id), created: !prev };
    }
    throw errors.conflict(`instance ${spec.id} is being changed concurrently; try again`);
  }

  async deregister(id: string, cause: DeregisterCause = 'api', reason = 'deregistered through the API'): Promise<WriteResult> {
    const key = KEYS.instance(id);
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const kv = await this.opts.store.get(key);
      if (!kv) throw errors.notFound(`instance ${id} is not registered`);
      const rec = parseRecord(kv);
      const tomb: Tombstone = { id, service: rec.service, cause, reason: reason.slice(0, LIMITS.reason), at: this.opts.clock.now() };
      const res = await this.opts.store.txn({
        compare: [{ key, target: 'modRevision', op: 'equal', value: kv.modRevision }],
        success: [
          { type: 'delete', key },
          { type: 'put', key: KEYS.tombstone(id), value: JSON.stringify(tomb) },
        ],
      });
      if (!res.succeeded) continue;
      if (kv.lease) await this.leases.released(id, kv.lease);
      for (const c of rec.checks) this.outputs.delete(c.id);
      await this.opts.catalog.waitForIndex(res.revision);
      return { index: res.revision };
    }
    throw errors.conflict(`instance ${id} is being changed concurrently; try again`);
  }

  // ---- node checks ----------------------------------------------------------------------

  /**
   * Registers (or updates) a node-level check: it counts against every instance on `node`, so a
   * critical one takes them all out of the answers. Re-registering keeps its state. Active
   * checks pass the same target policy as an instance's, with the node's address in the
   * instance's place.
   */
  async registerNodeCheck(node: string, input: CheckInput, opts: Pick<RegisterOptions, 'checkTargets'> = {}): Promise<WriteResult & { check: Check }> {
    assertNodeName(node);
    const spec = normalizeNodeCheck(input);
    // The server runs node checks (source api: not an agent's), against the node's address.
    this.opts.checkPolicy?.({ spec: { address: this.opts.catalog.node(node)?.address ?? '', source: 'api' }, checks: [spec] }, opts.checkTargets ?? 'instance');
    const owner = this.opts.catalog.instanceByCheck(spec.id);
    if (owner) throw errors.conflict(`check id ${spec.id} is taken by a check of instance ${owner.id}`);
    const key = KEYS.nodeCheck(spec.id);
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const kv = await this.opts.store.get(key);
      const prev = kv ? parseNodeCheckRecord(kv.value) : undefined;
      if (prev && prev.node !== node) throw errors.conflict(`check ${spec.id} is a node check of node ${prev.node}`);
      const now = this.opts.clock.now();
      const old = prev?.check.kind === spec.kind ? prev.check : undefined;
      const status = old?.status ?? input.status ?? this.opts.initialCheckStatus ?? 'critical';
      const check: Check = old ? { ...spec, status: old.status, output: old.output, since: old.since } : { ...spec, status, output: status === 'passing' ? '' : AWAITING, since: now };
      const rec: NodeCheckRecord = {
        node,
        check,
        change: { kind: 'check', reason: `node check ${check.name} ${prev ? 'updated' : 'registered'} (${check.status})`, at: now, checkId: check.id, to: check.status },
      };
      if (prev && JSON.stringify(prev.check) === JSON.stringify(rec.check)) return { index: kv!.modRevision, check: prev.check };
      const res = await this.opts.store.txn({
        compare: [kv ? { key, target: 'modRevision', op: 'equal', value: kv.modRevision } : { key, target: 'exists', value: false }],
        success: [{ type: 'put', key, value: JSON.stringify(rec) }],
      });
      if (!res.succeeded) continue;
      await this.opts.catalog.waitForIndex(res.revision);
      this.opts.logger?.info({ node, check: check.id, index: res.revision }, prev ? 'node check updated' : 'node check registered');
      return { index: res.revision, check };
    }
    throw errors.conflict(`node check ${spec.id} is being changed concurrently; try again`);
  }

  async deregisterNodeCheck(checkId: string): Promise<WriteResult> {
    const key = KEYS.nodeCheck(checkId);
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const kv = await this.opts.store.get(key);
      if (!kv) throw errors.notFound(`check ${checkId} is not registered`);
      const res = await this.opts.store.txn({ compare: [{ key, target: 'modRevision', op: 'equal', value: kv.modRevision }], success: [{ type: 'delete', key }] });
      if (!res.succeeded) continue;
      this.outputs.delete(checkId);
      await this.opts.catalog.waitForIndex(res.revision);
      return { index: res.revision };
    }
    throw errors.conflict(`node check ${checkId} is being changed concurrently; try again`);
  }

  /** Renews the instance's lease. `not_found` for an unknown or expired instance: the client must register again. */
  async heartbeat(id: string): Promise<HeartbeatResult> {
    const inst = this.opts.catalog.instance(id);
    if (!inst) throw errors.notFound(`instance ${id} is not registered; register it again`);
    const lease = this.opts.catalog.leaseOf(id);
    if (!lease || inst.ttlMs === undefined) throw errors.precondition(`instance ${id} has no lease (it was registered without ttlMs)`);
    return this.leases.heartbeat(id, lease, inst.ttlMs);
  }

  /** The instance's TTL and what is left of it (explain); undefined without a live lease. */
  async leaseRemaining(id: string): Promise<HeartbeatResult | undefined> {
    const inst = this.opts.catalog.instance(id);
    const lease = this.opts.catalog.leaseOf(id);
    if (!inst || !lease || inst.ttlMs === undefined) return undefined;
    return this.leases.remaining(id, lease, inst.ttlMs);
  }

  async setMaintenance(id: string, enable: boolean, reason: string): Promise<WriteResult> {
    return this.mutate(id, (rec, now) => {
      if (enable === !!rec.maintenance && (!enable || rec.maintenance?.reason === reason)) return undefined;
      if (enable) rec.maintenance = { reason: reason || 'maintenance mode', since: now };
      else delete rec.maintenance;
      return { kind: 'maintenance', reason: enable ? `maintenance on: ${rec.maintenance!.reason}` : 'maintenance off', at: now };
    });
  }

  async setDraining(id: string, enable: boolean, reason: string): Promise<WriteResult> {
    return this.mutate(id, (rec, now) => {
      if (enable === !!rec.draining && (!enable || rec.draining?.reason === reason)) return undefined;
      if (enable) rec.draining = { reason: reason || 'draining', since: now };
      else delete rec.draining;
      return { kind: 'drain', reason: enable ? `draining: ${rec.draining!.reason}` : 'drain cancelled', at: now };
    });
  }

  /**
   * An instance's report on its own check (pass / warn / fail): TTL checks, and every kind of
   * check of an agent-registered instance (the agent runs them next to the service). Resets the
   * TTL clock. Writes only when the status changes; output alone is kept in memory.
   */
  async reportCheck(checkId: string, status: CheckStatus, note?: string): Promise<WriteResult> {
    const nodeCheck = this.opts.catalog.nodeCheck(checkId);
    if (nodeCheck) {
      if (nodeCheck.check.kind !== 'ttl') throw errors.invalid(`check ${checkId} is a ${nodeCheck.check.kind} check run by the server; only ttl checks take pass/warn/fail`);
      let relayed: Promise<void> | undefined;
      if (this.owns(nodeOwner(nodeCheck.node))) this.armNodeTtl(nodeCheck.check);
      else relayed = this.opts.relayTtlReport?.(checkId);
      const result = await this.setCheckStatus(checkId, status, note ?? '', 'reported for the node');
      await relayed;
      return result;
    }
    const inst = this.opts.catalog.instanceByCheck(checkId);
    const check = inst?.checks.find((c) => c.id === checkId);
    if (!inst || !check) throw errors.notFound(`check ${checkId} is not registered`);
    if (check.kind !== 'ttl' && inst.source !== 'agent')
      throw errors.invalid(`check ${checkId} is a ${check.kind} check run by the server; only ttl checks (or checks of agent-registered instances) take pass/warn/fail`);
    let relayed: Promise<void> | undefined;
    if (check.kind === 'ttl') {
      if (this.owns(inst.id)) this.armTtl(check);
      else relayed = this.opts.relayTtlReport?.(checkId);
    }
    const result = await this.setCheckStatus(checkId, status, note ?? '', inst.source === 'agent' && check.kind !== 'ttl' ? 'reported by the agent' : 'reported by the instance');
    await relayed;
    return result;
  }

  /** Clustered mode: a report for a TTL check reached another server; restart its timer if it is ours. */
  ttlReportedElsewhere(checkId: string): void {
    if (this.closed) return;
    const nodeCheck = this.opts.catalog.nodeCheck(checkId);
    if (nodeCheck) {
      if (nodeCheck.check.kind === 'ttl' && this.owns(nodeOwner(nodeCheck.node))) this.armNodeTtl(nodeCheck.check);
      return;
    }
    const inst = this.opts.catalog.instanceByCheck(checkId);
    const check = inst?.checks.find((c) => c.id === checkId);
    if (inst && check?.kind === 'ttl' && this.owns(inst.id)) this.armTtl(check);
  }

  /** Clustered mode: ownership moved (a server joined or left); take up or drop instance timers. */
  rebalance(): void {
    if (this.closed) return;
    const ids = new Set<string>(this.criticalTimers.keys());
    for (const s of this.opts.catalog.services()) for (const i of this.opts.catalog.service(s.name).instances) ids.add(i.id);
    for (const id of ids) this.reconcile(id);
    this.reconcileNodeChecks();
  }

  /** The path every check result takes (TTL updates, TTL expiry, active checkers). */
  async setCheckStatus(checkId: string, status: CheckStatus, output: string, why: string, holdDown?: Check['holdDown']): Promise<WriteResult> {
    const inst = this.opts.catalog.instanceByCheck(checkId);
    const now = this.opts.clock.now();
    const capped = capOutput(output);
    /** One transition for instance and node checks alike; undefined when nothing changes. */
    const transition = (c: Check | undefined, what: string): ChangeNote | undefined => {
      if (!c || (c.status === status && c.holdDown?.until === holdDown?.until)) return undefined;
      const from = c.status;
      c.status = status;
      c.output = capped;
      if (from !== status) c.since = now;
      if (holdDown) c.holdDown = holdDown;
      else delete c.holdDown;
      return { kind: 'check', reason: `${what} ${c.name} ${from} → ${status} (${why})`, checkId, from, to: status, output: capped, at: now };
    };
    if (!inst) {
      if (!this.opts.catalog.nodeCheck(checkId)) throw errors.notFound(`check ${checkId} is not registered`);
      this.noteResult(checkId, status, capped);
      return this.mutateNodeCheck(checkId, (c) => transition(c, 'node check'));
    }
    this.noteResult(checkId, status, capped);
    return this.mutate(inst.id, (rec) => transition(rec.checks.find((x) => x.id === checkId), 'check'));
  }

  /** Keeps a result that changed nothing, so `explain` shows the latest output without a write. */
  noteResult(checkId: string, status: CheckStatus, output: string): void {
    this.outputs.set(checkId, { status, output: capOutput(output), at: this.opts.clock.now() });
  }

  /** In-memory latest output of a check (for explain). */
  liveOutput(checkId: string): LiveOutput | undefined {
    return this.outputs.get(checkId);
  }

  // ---- internals ------------------------------------------------------------------------

  private async mutate(id: string, apply: (rec: InstanceRecord, now: number) => ChangeNote | undefined): Promise<WriteResult> {
    const key = KEYS.instance(id);
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const kv = await this.opts.store.get(key);
      if (!kv) throw errors.notFound(`instance ${id} is not registered`);
      const rec = parseRecord(kv);
      const note = apply(rec, this.opts.clock.now());
      if (!note) return { index: kv.modRevision };
      rec.change = note;
      const res = await this.opts.store.txn({
        compare: [{ key, target: 'modRevision', op: 'equal', value: kv.modRevision }],
        // Etcd detaches a key from its lease on a put without one: always carry it over.
        success: [{ type: 'put', key, value: JSON.stringify(rec), ...(kv.lease ? { lease: kv.lease } : {}) }],
      });
      if (!res.succeeded) continue;
      await this.opts.catalog.waitForIndex(res.revision);
      return { index: res.revision };
    }
    throw errors.conflict(`instance ${id} is being changed concurrently; try again`);
  }

  private async mutateNodeCheck(checkId: string, apply: (check: Check) => ChangeNote | undefined): Promise<WriteResult> {
    const key = KEYS.nodeCheck(checkId);
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const kv = await this.opts.store.get(key);
      const rec = kv ? parseNodeCheckRecord(kv.value) : undefined;
      if (!kv || !rec) throw errors.notFound(`check ${checkId} is not registered`);
      const note = apply(rec.check);
      if (!note) return { index: kv.modRevision };
      rec.change = note;
      const res = await this.opts.store.txn({ compare: [{ key, target: 'modRevision', op: 'equal', value: kv.modRevision }], success: [{ type: 'put', key, value: JSON.stringify(rec) }] });
      if (!res.succeeded) continue;
      await this.opts.catalog.waitForIndex(res.revision);
      return { index: res.revision };
    }
    throw errors.conflict(`node check ${checkId} is being changed concurrently; try again`);
  }

  /** Keeps node checks' TTL timers in line with the catalog: armed on the server that owns the node, dropped when the check goes. */
  private reconcileNodeChecks(): void {
    if (this.closed) return;
    for (const id of this.nodeTtl) {
      if (this.opts.catalog.nodeCheck(id)) continue;
      this.ttlTimers.get(id)?.cancel();
      this.ttlTimers.delete(id);
      this.nodeTtl.delete(id);
      this.outputs.delete(id);
    }
    for (const r of this.opts.catalog.allNodeChecks()) {
      const c = r.check;
      if (c.kind !== 'ttl') continue;
      if (!this.owns(nodeOwner(r.node))) {
        this.ttlTimers.get(c.id)?.cancel();
        this.ttlTimers.delete(c.id);
        this.nodeTtl.delete(c.id);
      } else if (c.status !== 'critical' && !this.ttlTimers.has(c.id)) {
        this.armNodeTtl(c);
      }
    }
  }

  private armNodeTtl(check: Check): void {
    this.armTtl(check);
    this.nodeTtl.add(check.id);
  }

  /** Keeps the state of checks that survive a re-registration; new ones start at the initial status. */
  private mergeChecks(prev: Check[], reg: NormalizedRegistration, now: number): Check[] {
    return reg.checks.map((spec: CheckSpec) => {
      const old = prev.find((c) => c.id === spec.id && c.kind === spec.kind);
      if (old) return { ...spec, status: old.status, output: old.output, since: old.since };
      const status = reg.initial.get(spec.id) ?? this.opts.initialCheckStatus ?? 'critical';
      return { ...spec, status, output: status === 'passing' ? '' : AWAITING, since: now };
    });
  }

  private mustInstance(id: string): Instance {
    const i = this.opts.catalog.instance(id);
    if (!i) throw errors.unavailable(`instance ${id} was written but is not in the catalog yet`);
    return i;
  }

  /** Keeps TTL and deregister-after-critical timers in line with what the catalog holds now. */
  private reconcile(id: string): void {
    if (this.closed) return;
    const inst = this.opts.catalog.instance(id);
    const live = new Set(inst?.checks.map((c) => c.id) ?? []);
    for (const [checkId, t] of this.ttlTimers) {
      if (!live.has(checkId) && this.opts.catalog.instanceByCheck(checkId) === undefined && !this.nodeTtl.has(checkId)) {
        t.cancel();
        this.ttlTimers.delete(checkId);
        this.outputs.delete(checkId);
      }
    }
    const crit = this.criticalTimers.get(id);
    if (!inst) {
      crit?.timer.cancel();
      this.criticalTimers.delete(id);
      return;
    }
    if (!this.owns(id)) {
      // Another server runs this instance's timers.
      for (const c of inst.checks) {
        this.ttlTimers.get(c.id)?.cancel();
        this.ttlTimers.delete(c.id);
      }
      crit?.timer.cancel();
      this.criticalTimers.delete(id);
      return;
    }
    const now = this.opts.clock.now();
    for (const c of inst.checks) if (c.kind === 'ttl' && c.status !== 'critical' && !this.ttlTimers.has(c.id)) this.armTtl(c);

    // The earliest deadline among critical liveness checks that ask for deregistration.
    let due: { since: number; at: number; check: Check } | undefined;
    for (const c of inst.checks) {
      if (c.role !== 'liveness' || c.status !== 'critical' || c.deregisterCriticalAfterMs === undefined) continue;
      // A hold-down for flapping is not evidence of death: the clock starts when it ends.
      const from = Math.max(c.since, c.holdDown?.until ?? 0);
      const at = from + c.deregisterCriticalAfterMs;
      if (!due || at < due.at) due = { since: from, at, check: c };
    }
    if (!due) {
      crit?.timer.cancel();
      this.criticalTimers.delete(id);
      return;
    }
    if (crit && crit.since === due.since) return;
    crit?.timer.cancel();
    const { check, at, since: clockStart } = due;
    const timer = this.opts.clock.setTimeout(() => {
      this.criticalTimers.delete(id);
      const cur = this.opts.catalog.instance(id)?.checks.find((x) => x.id === check.id);
      if (!cur || cur.status !== 'critical' || Math.max(cur.since, cur.holdDown?.until ?? 0) !== clockStart) return;
      const reason = `check ${check.name} critical for longer than ${check.deregisterCriticalAfterMs} ms`;
      this.deregister(id, 'critical_too_long', reason).catch((err) => this.backgroundError(err, id, 'deregister after critical'));
    }, Math.max(0, at - now));
    this.criticalTimers.set(id, { since: due.since, timer });
  }

  private owns(instanceId: string): boolean {
    return this.opts.owns?.(instanceId) ?? true;
  }

  private armTtl(check: Check): void {
    this.ttlTimers.get(check.id)?.cancel();
    const ttl = check.ttlMs ?? 0;
    const timer = this.opts.clock.setTimeout(() => {
      this.ttlTimers.delete(check.id);
      this.setCheckStatus(check.id, 'critical', 'TTL expired', `no update within ${ttl} ms`).catch((err) =>
        this.backgroundError(err, check.id, 'ttl expiry'),
      );
    }, ttl);
    this.ttlTimers.set(check.id, timer);
  }

  private backgroundError(err: unknown, subject: string, what: string): void {
    if (isBeaconError(err) && err.code === 'not_found') return; // gone meanwhile: nothing to do
    this.opts.logger?.error({ err, subject }, `${what} failed`);
  }

  private schedulePrune(delayMs: number): void {
    if (this.closed) return;
    this.pruneTimer = this.opts.clock.setTimeout(() => {
      this.pruneTombstones()
        .catch((err) => this.opts.logger?.warn({ err }, 'tombstone pruning failed'))
        .finally(() => this.schedulePrune(5 * 60_000));
    }, delayMs);
  }

  /** Drops tombstones past retention; they only serve `explain` for instances that are gone. */
  async pruneTombstones(): Promise<number> {
    const retention = this.opts.tombstoneRetentionMs ?? 3_600_000;
    const { kvs } = await this.opts.store.range(KEYS.tombstones);
    const cutoff = this.opts.clock.now() - retention;
    let n = 0;
    for (const kv of kvs) {
      let at = 0;
      try {
        at = (JSON.parse(kv.value) as Tombstone).at;
      } catch {
        /* unreadable: prune */
      }
      if (at >= cutoff) continue;
      const res = await this.opts.store.txn({
        compare: [{ key: kv.key, target: 'modRevision', op: 'equal', value: kv.modRevision }],
        success: [{ type: 'delete', key: kv.key }],
      });
      if (res.succeeded) n++;
    }
    return n;
  }
}

/** Who runs a node check's timers in clustered mode: the owner of this name. */
function nodeOwner(node: string): string {
  return `node:${node}`;
}

function parseRecord(kv: KeyValue): InstanceRecord {
  try {
    return JSON.parse(kv.value) as InstanceRecord;
  } catch {
    throw errors.unavailable(`stored record ${kv.key} is unreadable`);
  }
}

/** Equal apart from bookkeeping: a re-registration that changes nothing writes nothing. */
function sameRecord(a: InstanceRecord, b: InstanceRecord): boolean {
  const strip = ({ change: _c, registeredAt: _r, ...rest }: InstanceRecord) => rest;
  return JSON.stringify(strip(a)) === JSON.stringify(strip(b));
}

function capOutput(s: string): string {
  if (Buffer.byteLength(s) <= LIMITS.checkOutput) return s;
  return Buffer.from(s).subarray(0, LIMITS.checkOutput).toString('utf8');
}
