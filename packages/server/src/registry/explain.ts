import { inAnswers, type ChangeEvent, type CheckKind, type CheckRole, type CheckStatus, type Clock, type Conditions, type Flag } from '@beacon/core';
import type { CatalogView, Tombstone } from '../catalog/view.js';
import type { Registry } from './registry.js';

export interface CheckExplanation {
  id: string;
  name: string;
  kind: CheckKind;
  role: CheckRole;
  status: CheckStatus;
  since: number;
  output: string;
  /** When the latest result was seen (may be newer than `since`: unchanged results are not written). */
  lastResultAt?: number;
  /** Held out for flapping until then. */
  holdDown?: { until: number; reason: string };
  /** Active checks run by this server: when the next run is due. */
  nextRunAt?: number;
  /** Set for a node-level check: it belongs to this node and counts for every instance on it. */
  node?: string;
}

export interface Explanation {
  id: string;
  registered: boolean;
  service?: string;
  /** In the answers of a discovery query without `passing`; and with it. */
  inAnswers: boolean;
  inPassingAnswers: boolean;
  status?: CheckStatus;
  conditions?: Conditions;
  /** Human-readable reasons it is left out, empty when it is in the answers. */
  reasons: string[];
  checks: CheckExplanation[];
  maintenance?: Flag;
  draining?: Flag;
  lease?: { ttlMs: number; remainingMs: number };
  deregistered?: Tombstone | { cause: string; reason: string; at: number };
  recentEvents: ChangeEvent[];
}

/** Answers "why is this instance (not) in the answer right now?" from the catalog and the registry. */
export async function explainInstance(
  deps: { catalog: CatalogView; registry: Registry; clock: Clock; activeChecks?: { explain(checkId: string): { nextRunAt?: number } | undefined } },
  id: string,
): Promise<Explanation | undefined> {
  const { catalog, registry } = deps;
  const recentEvents = catalog.history({ instanceId: id, limit: 20 });
  const inst = catalog.instance(id);
  if (!inst) {
    const t = catalog.tombstone(id);
    const last = [...recentEvents].reverse().find((e) => e.kind === 'deregistered');
    if (!t && !last) return undefined;
    const deregistered = t ?? { cause: last!.cause ?? 'api', reason: last!.reason, at: last!.at };
    return {
      id,
      registered: false,
      service: t?.service ?? last?.service,
      inAnswers: false,
      inPassingAnswers: false,
      reasons: [`not registered: ${deregistered.reason}`],
      checks: [],
      deregistered,
      recentEvents,
    };
  }
  const nodeChecks = catalog.nodeChecks(inst.node);
  const checks: CheckExplanation[] = [...inst.checks, ...nodeChecks].map((c, n) => {
    const live = registry.liveOutput(c.id);
    const e: CheckExplanation = { id: c.id, name: c.name, kind: c.kind, role: c.role, status: c.status, since: c.since, output: live?.output ?? c.output };
    if (n >= inst.checks.length) e.node = inst.node;
    if (live) e.lastResultAt = live.at;
    if (c.holdDown && c.holdDown.until > deps.clock.now()) e.holdDown = c.holdDown;
    const next = deps.activeChecks?.explain(c.id)?.nextRunAt;
    if (next !== undefined) e.nextRunAt = next;
    return e;
  });
  const reasons: string[] = [];
  if (inst.maintenance) reasons.push(`in maintenance: ${inst.maintenance.reason}`);
  if (inst.draining) reasons.push(`draining: ${inst.draining.reason}`);
  for (const c of inst.checks) {
    if (c.status !== 'critical') continue;
    const held = c.holdDown && c.holdDown.until > deps.clock.now() ? ` — held down for flapping until ${new Date(c.holdDown.until).toISOString()} (${c.holdDown.reason})` : '';
    reasons.push(`${c.role} check ${c.name} (${c.id}) is critical: ${c.output || 'no output'}${held}`);
  }
  for (const c of nodeChecks) if (c.status === 'critical') reasons.push(`node check ${c.name} (${c.id}) of node ${inst.node} is critical: ${c.output || 'no output'}`);
  const passingOnly = [...inst.checks, ...nodeChecks].filter((c) => c.status === 'warning').map((c) => `check ${c.name} (${c.id}) is warning: ${c.output || 'no output'}`);
  const out: Explanation = {
    id,
    registered: true,
    service: inst.service,
    inAnswers: inAnswers(inst, false),
    inPassingAnswers: inAnswers(inst, true),
    status: inst.status,
    conditions: inst.conditions,
    reasons: reasons.length ? reasons : passingOnly.map((r) => `left out of ?passing answers: ${r}`),
    checks,
    recentEvents,
  };
  if (inst.maintenance) out.maintenance = inst.maintenance;
  if (inst.draining) out.draining = inst.draining;
  const lease = await registry.leaseRemaining(id);
  if (lease) out.lease = lease;
  return out;
}
