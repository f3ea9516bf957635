import type { Clock, Timer } from '@beacon/core';
import type { Store } from '../store/types.js';

/** The parts of a server an orchestrator's readiness probe looks at. */
export const READINESS_CHECKS = ['store', 'catalog', 'listeners'] as const;
export type ReadinessCheckName = (typeof READINESS_CHECKS)[number];

export interface ReadinessCheck {
  name: ReadinessCheckName;
  ok: boolean;
  /** Why it is not ok, or what was seen when it is. */
  reason: string;
}

export interface Readiness {
  status: 'ready' | 'not_ready';
  checks: ReadinessCheck[];
}

/** A listener the server means to serve on, and whether it is bound now. */
export interface ListenerState {
  name: string;
  listening: boolean;
}

export interface ReadinessDeps {
  store: Pick<Store, 'currentRevision'>;
  catalog: { readonly stale: boolean };
  clock: Clock;
  listeners: () => ListenerState[];
}

/**
 * A probe must answer within the orchestrator's own timeout (Kubernetes: 1 s by default), and a
 * store that does not answer in this long is as good as unreachable to the clients behind it.
 */
export const STORE_PROBE_MS = 800;

/** Asks each part in turn; ready only when all are. */
export async function readiness(deps: ReadinessDeps): Promise<Readiness> {
  const checks = [await storeCheck(deps), catalogCheck(deps), listenerCheck(deps)];
  return { status: checks.every((c) => c.ok) ? 'ready' : 'not_ready', checks };
}

async function storeCheck({ store, clock }: ReadinessDeps): Promise<ReadinessCheck> {
  let timer: Timer | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = clock.setTimeout(() => reject(new Error(`no answer within ${STORE_PROBE_MS}ms`)), STORE_PROBE_MS);
  });
  try {
    const revision = await Promise.race([store.currentRevision(), late]);
    return { name: 'store', ok: true, reason: `reachable at revision ${revision}` };
  } catch (err) {
    return { name: 'store', ok: false, reason: `unreachable: ${err instanceof Error ? err.message : String(err)}` };
  } finally {
    timer?.cancel();
  }
}

function catalogCheck({ catalog }: ReadinessDeps): ReadinessCheck {
  return catalog.stale
    ? { name: 'catalog', ok: false, reason: 'stale: its store watch could not be confirmed current' }
    : { name: 'catalog', ok: true, reason: 'current' };
}

function listenerCheck({ listeners }: ReadinessDeps): ReadinessCheck {
  const all = listeners();
  const down = all.filter((l) => !l.listening).map((l) => l.name);
  return down.length
    ? { name: 'listeners', ok: false, reason: `not listening: ${down.join(', ')}` }
    : { name: 'listeners', ok: true, reason: `listening: ${all.map((l) => l.name).join(', ')}` };
}
