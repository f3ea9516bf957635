import { errors, type Clock } from '@beacon/core';
import { KEYS } from '../keys.js';
import { PrefixMirror, type MirrorChange, type MirrorEntry } from '../compat/mirror.js';
import type { Store } from '../store/types.js';
import { ANONYMOUS_ACCESSOR_ID, GLOBAL_MANAGEMENT_ID } from './builtins.js';
import { ACL_DIRS, hashSecret, parseAclRecord, type AclRecord, type PolicyRecord, type RoleRecord, type TokenRecord } from './records.js';
import type { AclResolver, Authorizer } from './types.js';

export interface AclStateOptions {
  store: Store;
  clock: Clock;
  logger?: { warn(obj: unknown, msg?: string): void; error(obj: unknown, msg?: string): void };
}

/** A record with the store revisions of its creation and last change (Consul's CreateIndex, ModifyIndex). */
export interface Indexed<T> {
  record: T;
  createIndex: number;
  modifyIndex: number;
}

const KNOWN_SECRETS_MAX = 10_000;

/** Until an operator gives the anonymous token policies (or while its record is not there yet), no token means no rights. */
const NOTHING = (accessorId: string): Authorizer => Object.freeze({ accessorId, management: false, rules: [] });

/**
 * Every server's copy of the ACL state, kept current from the store's change feed, so resolving a
 * token is a map lookup on the request path and every server of a cluster sees the same tokens
 * within the feed's delay. Authorizers are built once per token and rebuilt only when the token,
 * one of its roles or one of its policies changes; listeners hear which tokens that was.
 */
export class AclState implements AclResolver {
  readonly enabled = true;
  readonly mirror: PrefixMirror<AclRecord>;
  private readonly byHash = new NameIndex();
  private readonly policyIds = new NameIndex();
  private readonly roleIds = new NameIndex();
  private readonly authorizers = new Map<string, Authorizer>();
  /**
   * Secrets already resolved → their accessor: hashing one costs about 3 µs, a heartbeat's whole
   * cost is some tens. Only secrets that name a token are kept (a stream of made-up ones cannot
   * fill it), at most {@link KNOWN_SECRETS_MAX}, and all are forgotten when any token is deleted.
   */
  private readonly known = new Map<string, string>();
  private readonly listeners = new Set<(ids: ReadonlySet<string> | 'all') => void>();

  constructor(private readonly opts: AclStateOptions) {
    this.mirror = new PrefixMirror<AclRecord>({ store: opts.store, clock: opts.clock, prefix: KEYS.acl, parse: parseAclRecord, ...(opts.logger ? { logger: opts.logger } : {}) });
    this.mirror.onChange((c) => this.applied(c));
  }

  async start(): Promise<void> {
    await this.mirror.start();
    this.reindex();
  }

  close(): Promise<void> {
    return this.mirror.close();
  }

  resolve(secret: string | undefined): Authorizer {
    if (secret === undefined) return this.authorizer(ANONYMOUS_ACCESSOR_ID);
    let accessorId = this.known.get(secret);
    if (accessorId === undefined) {
      accessorId = this.byHash.get(hashSecret(secret));
      // Consul's answer for an unknown secret; it does not fall back to anonymous, so a typo shows.
      if (accessorId === undefined) throw errors.forbidden('ACL not found');
      if (this.known.size >= KNOWN_SECRETS_MAX) this.known.clear();
      this.known.set(secret, accessorId);
    }
    return this.authorizer(accessorId);
  }

  /** The rights of a token by its accessor id (undefined once it is gone). */
  byAccessor(accessorId: string): Authorizer | undefined {
    return this.token(accessorId) ? this.authorizer(accessorId) : undefined;
  }

  onChange(listener: (accessorIds: ReadonlySet<string> | 'all') => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  // ---- reads (the ACL APIs) ----------------------------------------------------------------

  token(accessorId: string): Indexed<TokenRecord> | undefined {
    return this.one(TOKENS, accessorId);
  }

  tokenBySecret(secret: string): Indexed<TokenRecord> | undefined {
    return this.one(TOKENS, this.byHash.get(hashSecret(secret)));
  }

  tokens(): Indexed<TokenRecord>[] {
    return this.all(TOKENS);
  }

  policy(id: string): Indexed<PolicyRecord> | undefined {
    return this.one(POLICIES, id);
  }

  policyByName(name: string): Indexed<PolicyRecord> | undefined {
    return this.one(POLICIES, this.policyIds.get(name));
  }

  policies(): Indexed<PolicyRecord>[] {
    return this.all(POLICIES);
  }

  role(id: string): Indexed<RoleRecord> | undefined {
    return this.one(ROLES, id);
  }

  roleByName(name: string): Indexed<RoleRecord> | undefined {
    return this.one(ROLES, this.roleIds.get(name));
  }

  roles(): Indexed<RoleRecord>[] {
    return this.all(ROLES);
  }

  private one<T>(table: Table<T>, id: string | undefined): Indexed<T> | undefined {
    return id === undefined ? undefined : indexed(this.mirror.get(table.dir + id), table.pick);
  }

  /** In the order they were created: ids are random, so an order by id would change from run to run. */
  private all<T>(table: Table<T>): Indexed<T>[] {
    return this.mirror
      .list(table.dir)
      .flatMap((e) => indexed(e, table.pick) ?? [])
      .sort((a, b) => a.createIndex - b.createIndex);
  }

  /** Highest index of any ACL change (the X-Consul-Index of ACL listings). */
  get index(): number {
    return this.mirror.index;
  }

  /** Resolves once this server's copy has applied `revision`: an ACL API answers its own writes. */
  caughtUp(revision: number): Promise<void> {
    return this.mirror.waitForRevision(revision);
  }

  // ---- derived state -----------------------------------------------------------------------

  private authorizer(accessorId: string): Authorizer {
    const cached = this.authorizers.get(accessorId);
    if (cached) return cached;
    const token = this.token(accessorId)?.record;
    if (!token) return NOTHING(accessorId);
    const policyIds = new Set(token.policies);
    for (const r of token.roles) for (const p of this.role(r)?.record.policies ?? []) policyIds.add(p);
    const rules = [...policyIds].flatMap((id) => this.policy(id)?.record.parsed ?? []);
    // The rules array is not frozen (its type is readonly): V8's optimised code does not read the
    // elements of a frozen array in line, and every decision walks this one (about 70 instructions
    // a rule, callgrind).
    const authz: Authorizer = Object.freeze({ accessorId, management: policyIds.has(GLOBAL_MANAGEMENT_ID) && this.policy(GLOBAL_MANAGEMENT_ID) !== undefined, rules });
    this.authorizers.set(accessorId, authz);
    return authz;
  }

  private reindex(): void {
    this.known.clear();
    this.byHash.clear();
    this.policyIds.clear();
    this.roleIds.clear();
    this.authorizers.clear();
    for (const e of this.mirror.all()) this.indexRecord(e.value, true);
  }

  private indexRecord(r: AclRecord, present: boolean): void {
    switch (r.type) {
      case 'token':
        this.byHash.set(r.token.accessorId, present ? r.token.secretHash : undefined);
        return;
      case 'policy':
        this.policyIds.set(r.policy.id, present ? r.policy.name : undefined);
        return;
      case 'role':
        this.roleIds.set(r.role.id, present ? r.role.name : undefined);
        return;
      case 'marker':
        return;
    }
  }

  private applied(c: MirrorChange<AclRecord>): void {
    if (c.reset) {
      this.reindex();
      this.tell('all');
      return;
    }
    const tokens = new Set<string>();
    const policies = new Set<string>();
    const roles = new Set<string>();
    const touch = (r: AclRecord) => {
      if (r.type === 'token') tokens.add(r.token.accessorId);
      else if (r.type === 'policy') policies.add(r.policy.id);
      else if (r.type === 'role') roles.add(r.role.id);
    };
    for (const d of c.deleted) {
      if (!d.previous) continue;
      if (d.previous.value.type === 'token') this.known.clear();
      this.indexRecord(d.previous.value, false);
      touch(d.previous.value);
    }
    for (const e of c.put) {
      this.indexRecord(e.value, true);
      touch(e.value);
    }
    if (tokens.size + policies.size + roles.size === 0) return;
    if (policies.size > 0 || roles.size > 0) {
      for (const t of this.tokens()) {
        const r = t.record;
        if (r.policies.some((p) => policies.has(p)) || r.roles.some((x) => roles.has(x) || this.role(x)?.record.policies.some((p) => policies.has(p)))) tokens.add(r.accessorId);
      }
      // A role that changed may have lost a policy: tokens of that role are already in via roles.
    }
    for (const id of tokens) this.authorizers.delete(id);
    this.tell(tokens);
  }

  private tell(ids: ReadonlySet<string> | 'all'): void {
    if (ids === 'all') this.authorizers.clear();
    for (const l of this.listeners) {
      try {
        l(ids);
      } catch (err) {
        this.opts.logger?.error({ err }, 'ACL change listener failed');
      }
    }
  }
}

/** Name → id, and id → its current name, so a rename (a put whose previous value the feed does not carry) drops the old name. */
class NameIndex {
  private readonly ids = new Map<string, string>();
  private readonly names = new Map<string, string>();

  get(name: string): string | undefined {
    return this.ids.get(name);
  }

  set(id: string, name: string | undefined): void {
    const old = this.names.get(id);
    if (old !== undefined && this.ids.get(old) === id) this.ids.delete(old);
    if (name === undefined) {
      this.names.delete(id);
      return;
    }
    this.names.set(id, name);
    this.ids.set(name, id);
  }

  clear(): void {
    this.ids.clear();
    this.names.clear();
  }
}

function indexed<T>(e: MirrorEntry<AclRecord> | undefined, pick: (r: AclRecord) => T | undefined): Indexed<T> | undefined {
  const record = e ? pick(e.value) : undefined;
  return e && record ? { record, createIndex: e.createIndex, modifyIndex: e.modifyIndex } : undefined;
}

/** Where one kind of record lives in the mirror, and how to read it out of a parsed record. */
interface Table<T> {
  dir: string;
  pick: (r: AclRecord) => T | undefined;
}

const TOKENS: Table<TokenRecord> = { dir: ACL_DIRS.token, pick: (r) => (r.type === 'token' ? r.token : undefined) };
const POLICIES: Table<PolicyRecord> = { dir: ACL_DIRS.policy, pick: (r) => (r.type === 'policy' ? r.policy : undefined) };
const ROLES: Table<RoleRecord> = { dir: ACL_DIRS.role, pick: (r) => (r.type === 'role' ? r.role : undefined) };
