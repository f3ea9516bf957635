import type { CheckStatus } from '@beacon/core';
import type { ServiceSummary } from './summary.js';

/**
 * One term of the Services query box. `name~^pay tag:v2 status:critical zone:a meta.version=1.2`:
 * every term must hold (AND); a bare word matches part of the name.
 */
export type Term =
  | { kind: 'name'; re: RegExp }
  | { kind: 'text'; text: string }
  | { kind: 'tag'; tag: string }
  | { kind: 'status'; status: CheckStatus }
  | { kind: 'zone'; zone: string }
  | { kind: 'meta'; key: string; value: string };

export interface Query {
  terms: Term[];
  /** Terms that did not parse, each with why; the others still apply. */
  errors: string[];
}

const STATUSES: readonly CheckStatus[] = ['passing', 'warning', 'critical'];
/** Regexes come from the URL: a bound keeps a pasted link from building a pathological one. */
const MAX_PATTERN = 200;

export function parseQuery(q: string): Query {
  const terms: Term[] = [];
  const errors: string[] = [];
  for (const word of q.trim().split(/\s+/).filter(Boolean)) {
    if (word.startsWith('name~')) {
      const src = word.slice(5);
      if (src.length > MAX_PATTERN) errors.push(`name~ pattern longer than ${MAX_PATTERN} characters`);
      else
        try {
          terms.push({ kind: 'name', re: new RegExp(src) });
        } catch {
          errors.push(`name~${src} is not a regular expression`);
        }
    } else if (word.startsWith('tag:')) terms.push({ kind: 'tag', tag: word.slice(4) });
    else if (word.startsWith('zone:')) terms.push({ kind: 'zone', zone: word.slice(5) });
    else if (word.startsWith('status:')) {
      const s = word.slice(7) as CheckStatus;
      if (STATUSES.includes(s)) terms.push({ kind: 'status', status: s });
      else errors.push(`status:${s} is not one of ${STATUSES.join(', ')}`);
    } else if (word.startsWith('meta.') && word.includes('=')) {
      const eq = word.indexOf('=');
      terms.push({ kind: 'meta', key: word.slice(5, eq), value: word.slice(eq + 1) });
    } else terms.push({ kind: 'text', text: word.toLowerCase() });
  }
  return { terms, errors };
}

function holds(t: Term, s: ServiceSummary): boolean {
  switch (t.kind) {
    case 'name':
      return t.re.test(s.name);
    case 'text':
      return s.name.includes(t.text);
    case 'tag':
      return s.tags.includes(t.tag);
    case 'status':
      return s.counts[t.status] > 0;
    case 'zone':
      return s.instances.some((i) => i.zone === t.zone);
    case 'meta':
      return s.instances.some((i) => i.meta[t.key] === t.value);
  }
}

export function matchesQuery(q: Query, s: ServiceSummary): boolean {
  for (const t of q.terms) if (!holds(t, s)) return false;
  return true;
}

export type SortKey = 'name' | 'ready' | 'critical';
export const SORT_KEYS: readonly SortKey[] = ['name', 'ready', 'critical'];

function count(s: ServiceSummary, key: Exclude<SortKey, 'name'>): number {
  switch (key) {
    case 'ready':
      return s.ready;
    case 'critical':
      return s.counts.critical;
  }
}

/**
 * `list` sorted by `key`, given `list` in name order (as the live view keeps it): by name that is
 * the list itself, with no sort on each change; by a count the sort is stable, so ties stay in name
 * order and rows do not jump.
 */
export function sortServices(list: ServiceSummary[], key: SortKey, descending: boolean): ServiceSummary[] {
  if (key === 'name') return descending ? [...list].reverse() : list;
  const dir = descending ? -1 : 1;
  return [...list].sort((a, b) => dir * (count(a, key) - count(b, key)));
}
