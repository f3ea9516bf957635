import type { CheckStatus, Instance } from '@beacon/core';

/** What the Services page shows of one service, derived from its instances. */
export interface ServiceSummary {
  name: string;
  total: number;
  /** Instances that take new traffic (conditions.ready). */
  ready: number;
  counts: Record<CheckStatus, number>;
  tags: string[];
  instances: readonly Instance[];
}

export function summarize(name: string, instances: Iterable<Instance>): ServiceSummary {
  const list = [...instances];
  const counts: Record<CheckStatus, number> = { passing: 0, warning: 0, critical: 0 };
  const tags = new Set<string>();
  let ready = 0;
  for (const i of list) {
    counts[i.status]++;
    if (i.conditions.ready) ready++;
    for (const t of i.tags) tags.add(t);
  }
  return { name, total: list.length, ready, counts, tags: [...tags].sort(), instances: list };
}
