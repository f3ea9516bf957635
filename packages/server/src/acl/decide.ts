import { errors } from '@beacon/core';
import type { AclAccess, AclGlobalKind, AclNamedKind, AclPolicyLevel, AclResourceKind, Authorizer } from './types.js';

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

/**
 * The level a token holds on a resource: the exact rule if there is one, else the longest matching
 * prefix; undefined when no rule speaks. It runs on every request: one pass over the rules with
 * an index (no iterator), merging as it goes (no arrays).
 */
export function levelFor(authz: Authorizer, kind: AclResourceKind, name = ''): AclPolicyLevel | undefined {
  const rules = authz.rules;
  let exact: AclPolicyLevel | undefined;
  let prefixLen = -1;
  let prefixed: AclPolicyLevel | undefined;
  for (let i = 0; i < rules.length; i++) {
    const r = rules[i]!;
    if (r.kind !== kind) continue;
    if (!('prefix' in r)) {
      exact = tie(exact, r.level);
      continue;
    }
    if (!r.prefix) {
      if (r.name === name) exact = tie(exact, r.level);
      continue;
    }
    if (r.name.length < prefixLen || !name.startsWith(r.name)) continue;
    if (r.name.length > prefixLen) {
      prefixLen = r.name.length;
      prefixed = r.level;
    } else prefixed = tie(prefixed, r.level);
  }
  return exact ?? prefixed;
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
