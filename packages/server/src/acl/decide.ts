import { errors } from '@beacon/core';
import type { AclAccess, AclGlobalKind, AclNamedKind, AclPolicyLevel, AclResourceKind, AclRule, Authorizer } from './types.js';

/** Ranks the granting levels (write implies list implies read); a switch, not a keyed table, so the hot path makes no keyed loads. */
function strength(level: AclAccess): number {
  switch (level) {
    case 'read':
      return 1;
    case 'list':
      return 2;
    case 'write':
      return 3;
  }
}

function grants(level: AclPolicyLevel, access: AclAccess): boolean {
  switch (level) {
    case 'deny':
      return false;
    case 'read':
    case 'list':
    case 'write':
      return strength(level) >= strength(access);
  }
}

/**
 * Merges the levels of two rules that match equally well: deny wins a tie, otherwise the
 * strongest. Consul merges a token's policies the same way.
 */
function tie(held: AclPolicyLevel | undefined, level: AclPolicyLevel): AclPolicyLevel {
  if (held === undefined) return level;
  if (held === 'deny' || level === 'deny') return 'deny';
  return strength(level) > strength(held) ? level : held;
}

/** A token's rules of one kind, arranged for lookup. */
interface KindRules {
  /** Merged level of the rules that name no resource (`operator = "write"`): they speak for every name. */
  unnamed: AclPolicyLevel | undefined;
  /** Merged level of the exact rules, by name. */
  exact: Map<string, AclPolicyLevel>;
  /** One entry per distinct prefix, its rules merged, longest first: the first that matches is the longest match. */
  prefixes: { name: string; level: AclPolicyLevel }[];
}

/**
 * Each authorizer's rules by kind, built on its first decision. Authorizers live as long as their
 * token, role and policies are unchanged (the ACL state builds a new one on any change), so this is
 * built once per token; walking all the rules on every request cost about 100 instructions a rule.
 */
const tables = new WeakMap<Authorizer, Map<AclResourceKind, KindRules>>();

function tableOf(authz: Authorizer): Map<AclResourceKind, KindRules> {
  let table = tables.get(authz);
  if (table === undefined) {
    table = arrange(authz.rules);
    tables.set(authz, table);
  }
  return table;
}

function arrange(rules: readonly AclRule[]): Map<AclResourceKind, KindRules> {
  const table = new Map<AclResourceKind, KindRules>();
  for (const r of rules) {
    let k = table.get(r.kind);
    if (k === undefined) table.set(r.kind, (k = { unnamed: undefined, exact: new Map(), prefixes: [] }));
    if (!('prefix' in r)) k.unnamed = tie(k.unnamed, r.level);
    else if (!r.prefix) k.exact.set(r.name, tie(k.exact.get(r.name), r.level));
    else {
      const same = k.prefixes.find((p) => p.name === r.name);
      if (same) same.level = tie(same.level, r.level);
      else k.prefixes.push({ name: r.name, level: r.level });
    }
  }
  for (const k of table.values()) k.prefixes.sort((a, b) => b.name.length - a.name.length);
  return table;
}

/** The level a token holds on a resource: the exact rule if there is one, else the longest matching prefix; undefined when no rule speaks. */
export function levelFor(authz: Authorizer, kind: AclResourceKind, name = ''): AclPolicyLevel | undefined {
  const k = tableOf(authz).get(kind);
  if (k === undefined) return undefined;
  const named = k.exact.size === 0 ? undefined : k.exact.get(name);
  const exact = named === undefined ? k.unnamed : tie(k.unnamed, named);
  if (exact !== undefined) return exact;
  const prefixes = k.prefixes;
  for (let i = 0; i < prefixes.length; i++) {
    const p = prefixes[i]!;
    if (p.name.length <= name.length && name.startsWith(p.name)) return p.level;
  }
  return undefined;
}

/** Whether a token may do `access` to a resource: management may do anything; no matching rule means deny. */
export function allowed(authz: Authorizer, kind: AclResourceKind, name: string, access: AclAccess): boolean {
  if (authz.management) return true;
  const level = levelFor(authz, kind, name);
  return level !== undefined && grants(level, access);
}

/**
 * The one access decision every interface calls.
 * @throws BeaconError `forbidden` naming what was needed (never which rule refused it).
 */
export function authorize(authz: Authorizer, kind: AclNamedKind, name: string, access: AclAccess): void;
export function authorize(authz: Authorizer, kind: AclGlobalKind, access: AclAccess): void;
export function authorize(authz: Authorizer, kind: AclResourceKind, nameOrAccess: string, access?: AclAccess): void {
  // Two locals, not a destructured pair: this runs on every request, and the pair was an allocation.
  const name = access === undefined ? '' : nameOrAccess;
  const need = access === undefined ? (nameOrAccess as AclAccess) : access;
  if (!allowed(authz, kind, name, need)) {
    throw errors.forbidden(`Permission denied: token lacks ${kind}:${need}${name === '' ? '' : ` on "${name}"`}`);
  }
}

/** A list filtered to what the token may read, and whether anything was dropped (Consul's X-Consul-Results-Filtered-By-ACLs). */
export function filterReadable<T>(authz: Authorizer, kind: AclNamedKind, items: readonly T[], nameOf: (t: T) => string): { items: T[]; filtered: boolean } {
  if (authz.management) return { items: items as T[], filtered: false };
  const out = items.filter((t) => allowed(authz, kind, nameOf(t), 'read'));
  return { items: out, filtered: out.length !== items.length };
}
