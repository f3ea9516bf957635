import { randomUUID } from 'node:crypto';
import { BeaconError, errors, type Clock } from '@beacon/core';
import type { Compare, Op, Store } from '../store/types.js';
import { UUID_RE } from '../compat/uuid.js';
import { ANONYMOUS_ACCESSOR_ID, anonymousToken, GLOBAL_MANAGEMENT_ID, globalManagementPolicy } from './builtins.js';
import { ACL_KEYS, hashSecret, type PolicyRecord, type RoleRecord, type TokenRecord } from './records.js';
import { parseRules } from './rules.js';
import type { AclState, Indexed } from './state.js';

/** A link to a policy or role as a request gives it: by id, or by name (looked up once, stored as the id). */
export interface LinkRef {
  id?: string;
  name?: string;
}

export interface TokenInput {
  description?: string;
  policies?: LinkRef[];
  roles?: LinkRef[];
  local?: boolean;
  /** Chosen by the caller (Consul allows it, for tokens carried over from elsewhere); a random UUID otherwise. */
  accessorId?: string;
  secretId?: string;
}

export interface PolicyInput {
  name: string;
  description?: string;
  rules?: string;
  datacenters?: string[];
}

export interface RoleInput {
  name: string;
  description?: string;
  policies?: LinkRef[];
}

export interface Link {
  id: string;
  name: string;
}

/** A token as the ACL APIs show it; `secretId` only where it is known: on creation, and for the public anonymous token. */
export interface TokenView {
  accessorId: string;
  secretId?: string;
  description: string;
  policies: Link[];
  roles: Link[];
  local: boolean;
  createTime: string;
  createIndex: number;
  modifyIndex: number;
}

export interface PolicyView extends Omit<PolicyRecord, 'parsed'> {
  createIndex: number;
  modifyIndex: number;
}

export interface RoleView extends Omit<RoleRecord, 'policies'> {
  policies: Link[];
  createIndex: number;
  modifyIndex: number;
}

export interface AclAdminOptions {
  store: Store;
  state: AclState;
  clock: Clock;
  /** Accessor and secret ids. Secrets must be unguessable: the default is the system's cryptographic UUID. */
  newId?: () => string;
}

const NAME_RE = /^[A-Za-z0-9_-]{1,128}$/;
const DESCRIPTION_MAX = 1024;
const LINKS_MAX = 64;
const ATTEMPTS = 8;

/**
 * Writes the ACL state: bootstrap, and tokens, policies and roles. Every write is one
 * compare-and-set transaction, so two servers sharing a store cannot both bootstrap, give two
 * policies one name or two tokens one secret; a write answers with what the server's copy
 * ({@link AclState}) holds once it has applied it.
 */
export class AclAdmin {
  private readonly newId: () => string;

  constructor(private readonly opts: AclAdminOptions) {
    this.newId = opts.newId ?? randomUUID;
  }

  private get state(): AclState {
    return this.opts.state;
  }

  /** Highest index of any ACL change (the index of ACL reads). */
  get index(): number {
    return this.state.index;
  }

  /** Creates the built-in global-management policy and anonymous token where they are missing (every server at start; the first wins). */
  async ensureBuiltins(): Promise<void> {
    const gm = globalManagementPolicy();
    const anon = anonymousToken(new Date(this.opts.clock.now()).toISOString());
    const a = await this.opts.store.txn({
      compare: [{ key: ACL_KEYS.policy(gm.id), target: 'exists', value: false }],
      success: [put(ACL_KEYS.policy(gm.id), gm), put(ACL_KEYS.policyName(gm.name), gm.id)],
    });
    const b = await this.opts.store.txn({
      compare: [{ key: ACL_KEYS.token(anon.accessorId), target: 'exists', value: false }],
      success: [put(ACL_KEYS.token(anon.accessorId), anon), put(ACL_KEYS.secret(anon.secretHash), anon.accessorId)],
    });
    await this.state.caughtUp(Math.max(a.revision, b.revision));
  }

  /**
   * The first management token, exactly once per store: the transaction creates the bootstrap
   * marker only if it is absent, so of two concurrent calls (on any servers) one wins.
   * @throws BeaconError `forbidden` once bootstrap has happened (Consul: "ACL bootstrap no longer allowed").
   */
  async bootstrap(): Promise<TokenView> {
    const secret = this.newId();
    const token: TokenRecord = {
      accessorId: this.newId(),
      secretHash: hashSecret(secret),
      description: 'Bootstrap Token (Global Management)',
      policies: [GLOBAL_MANAGEMENT_ID],
      roles: [],
      local: false,
      createTime: this.now(),
    };
    const res = await this.opts.store.txn({
      compare: [{ key: ACL_KEYS.bootstrap, target: 'exists', value: false }],
      success: [put(ACL_KEYS.bootstrap, token.accessorId), ...tokenOps(token)],
    });
    if (!res.succeeded) throw errors.forbidden('Permission denied: ACL bootstrap no longer allowed');
    await this.state.caughtUp(res.revision);
    return { ...this.tokenView(this.state.token(token.accessorId)!), secretId: secret };
  }

  // ---- tokens --------------------------------------------------------------------------------

  async createToken(input: TokenInput): Promise<TokenView> {
    const accessorId = input.accessorId ?? this.newId();
    const secret = input.secretId ?? this.newId();
    assertUuid(accessorId, 'AccessorID');
    assertUuid(secret, 'SecretID');
    const record = (): TokenRecord => ({
      accessorId,
      secretHash: hashSecret(secret),
      description: description(input.description),
      policies: this.policyLinks(input.policies),
      roles: this.roleLinks(input.roles),
      local: input.local ?? false,
      createTime: this.now(),
    });
    await this.attempt(() => {
      if (this.state.token(accessorId)) throw errors.conflict(`a token with AccessorID ${accessorId} exists`);
      if (this.state.tokenBySecret(secret)) throw errors.conflict('a token with that SecretID exists');
      const r = record();
      return { compare: [absent(ACL_KEYS.token(accessorId)), absent(ACL_KEYS.secret(r.secretHash))], success: tokenOps(r) };
    });
    return { ...this.tokenView(this.state.token(accessorId)!), secretId: secret };
  }

  /** Replaces a token's description and links. Its secret and Local flag stay as they were (Consul refuses to change them). */
  async updateToken(accessorId: string, input: TokenInput): Promise<TokenView> {
    await this.attempt(() => {
      const cur = this.mustToken(accessorId);
      if (input.accessorId !== undefined && input.accessorId !== accessorId) throw errors.invalid('AccessorID in the body does not match the one in the path');
      if (input.secretId !== undefined && hashSecret(input.secretId) !== cur.record.secretHash) throw errors.invalid("Changing a token's SecretID is not permitted");
      if (input.local !== undefined && input.local !== cur.record.local) throw errors.invalid("Cannot toggle a token's local mode");
      const next: TokenRecord = {
        ...cur.record,
        description: input.description === undefined ? cur.record.description : description(input.description),
        policies: this.policyLinks(input.policies),
        roles: this.roleLinks(input.roles),
      };
      return { compare: [unchanged(ACL_KEYS.token(accessorId), cur.modifyIndex)], success: [put(ACL_KEYS.token(accessorId), next)] };
    });
    return this.readToken(accessorId);
  }

  /** @param caller the accessor id of the request's own token: a token cannot delete itself (as Consul). */
  async deleteToken(accessorId: string, caller?: string): Promise<void> {
    if (accessorId === ANONYMOUS_ACCESSOR_ID) throw errors.forbidden('Deletion of the builtin anonymous token is not permitted');
    if (accessorId === caller) throw errors.forbidden("Deletion of the request's authorization token is not permitted");
    await this.attempt(() => {
      const cur = this.mustToken(accessorId);
      return removal(ACL_KEYS.token(accessorId), cur, ACL_KEYS.secret(cur.record.secretHash));
    });
  }

  readToken(accessorId: string): TokenView {
    return this.tokenView(this.mustToken(accessorId));
  }

  /** The token a secret names (Consul's /v1/acl/token/self). */
  tokenBySecret(secret: string): TokenView {
    const t = this.state.tokenBySecret(secret);
    if (!t) throw errors.forbidden('ACL not found');
    return { ...this.tokenView(t), secretId: secret };
  }

  listTokens(filter: { policy?: string; role?: string } = {}): TokenView[] {
    return this.state
      .tokens()
      .filter((t) => (filter.policy === undefined || t.record.policies.includes(filter.policy)) && (filter.role === undefined || t.record.roles.includes(filter.role)))
      .map((t) => this.tokenView(t));
  }

  // ---- policies ------------------------------------------------------------------------------

  async createPolicy(input: PolicyInput): Promise<PolicyView> {
    const id = this.newId();
    await this.attempt(() => {
      const rec = policyRecord(id, input);
      if (this.state.policyByName(rec.name)) throw errors.conflict(`a policy named "${rec.name}" exists`);
      return { compare: [absent(ACL_KEYS.policyName(rec.name))], success: [put(ACL_KEYS.policy(id), rec), put(ACL_KEYS.policyName(rec.name), id)] };
    });
    return this.readPolicy(id);
  }

  async updatePolicy(id: string, input: PolicyInput): Promise<PolicyView> {
    await this.attempt(() => {
      const cur = this.mustPolicy(id);
      const rec = policyRecord(id, input);
      if (id === GLOBAL_MANAGEMENT_ID && (rec.rules !== cur.record.rules || rec.datacenters.length > 0))
        throw errors.forbidden('Changing the Rules for the builtin global-management policy is not permitted');
      const rename = this.renameOps(cur.record.name, rec.name, id, ACL_KEYS.policyName, 'policy');
      return { compare: [unchanged(ACL_KEYS.policy(id), cur.modifyIndex), ...rename.compare], success: [put(ACL_KEYS.policy(id), rec), ...rename.success] };
    });
    return this.readPolicy(id);
  }

  async deletePolicy(id: string): Promise<void> {
    if (id === GLOBAL_MANAGEMENT_ID) throw errors.forbidden('Deletion of the builtin global-management policy is not permitted');
    await this.attempt(() => {
      const cur = this.mustPolicy(id);
      return removal(ACL_KEYS.policy(id), cur, ACL_KEYS.policyName(cur.record.name));
    });
  }

  readPolicy(id: string): PolicyView {
    return policyView(this.mustPolicy(id));
  }

  readPolicyByName(name: string): PolicyView {
    return policyView(found(this.state.policyByName(name), `ACL policy "${name}"`));
  }

  listPolicies(): PolicyView[] {
    return this.state.policies().map(policyView);
  }

  // ---- roles ---------------------------------------------------------------------------------

  async createRole(input: RoleInput): Promise<RoleView> {
    const id = this.newId();
    await this.attempt(() => {
      const rec: RoleRecord = { id, name: name(input.name, 'role'), description: description(input.description), policies: this.policyLinks(input.policies) };
      if (this.state.roleByName(rec.name)) throw errors.conflict(`a role named "${rec.name}" exists`);
      return { compare: [absent(ACL_KEYS.roleName(rec.name))], success: [put(ACL_KEYS.role(id), rec), put(ACL_KEYS.roleName(rec.name), id)] };
    });
    return this.readRole(id);
  }

  async updateRole(id: string, input: RoleInput): Promise<RoleView> {
    await this.attempt(() => {
      const cur = this.mustRole(id);
      const rec: RoleRecord = { id, name: name(input.name, 'role'), description: description(input.description), policies: this.policyLinks(input.policies) };
      const rename = this.renameOps(cur.record.name, rec.name, id, ACL_KEYS.roleName, 'role');
      return { compare: [unchanged(ACL_KEYS.role(id), cur.modifyIndex), ...rename.compare], success: [put(ACL_KEYS.role(id), rec), ...rename.success] };
    });
    return this.readRole(id);
  }

  async deleteRole(id: string): Promise<void> {
    await this.attempt(() => {
      const cur = this.mustRole(id);
      return removal(ACL_KEYS.role(id), cur, ACL_KEYS.roleName(cur.record.name));
    });
  }

  readRole(id: string): RoleView {
    return this.roleView(this.mustRole(id));
  }

  readRoleByName(roleName: string): RoleView {
    return this.roleView(found(this.state.roleByName(roleName), `ACL role "${roleName}"`));
  }

  listRoles(filter: { policy?: string } = {}): RoleView[] {
    return this.state
      .roles()
      .filter((r) => filter.policy === undefined || r.record.policies.includes(filter.policy))
      .map((r) => this.roleView(r));
  }

  // ---- helpers -------------------------------------------------------------------------------

  /**
   * Runs a compare-and-set built from this server's copy; when another writer got in between,
   * waits for the copy to catch up and builds it again (its checks may now refuse it).
   */
  private async attempt(build: () => { compare: Compare[]; success: Op[] }): Promise<void> {
    for (let i = 0; i < ATTEMPTS; i++) {
      const res = await this.opts.store.txn(build());
      await this.state.caughtUp(res.revision);
      if (res.succeeded) return;
    }
    throw errors.conflict('the ACL state kept changing under this write; try again');
  }

  private renameOps(from: string, to: string, id: string, key: (n: string) => string, what: 'policy' | 'role'): { compare: Compare[]; success: Op[] } {
    if (from === to) return { compare: [], success: [] };
    if ((what === 'policy' ? this.state.policyByName(to) : this.state.roleByName(to)) !== undefined) throw errors.conflict(`a ${what} named "${to}" exists`);
    return { compare: [absent(key(to))], success: [{ type: 'delete', key: key(from) }, put(key(to), id)] };
  }

  private policyLinks(refs: LinkRef[] | undefined): string[] {
    return links(refs, 'policy', (id) => this.state.policy(id)?.record.id, (n) => this.state.policyByName(n)?.record.id);
  }

  private roleLinks(refs: LinkRef[] | undefined): string[] {
    return links(refs, 'role', (id) => this.state.role(id)?.record.id, (n) => this.state.roleByName(n)?.record.id);
  }

  private mustToken(accessorId: string): Indexed<TokenRecord> {
    return found(this.state.token(accessorId), `ACL token ${JSON.stringify(accessorId)}`);
  }

  private mustPolicy(id: string): Indexed<PolicyRecord> {
    return found(this.state.policy(id), `ACL policy ${JSON.stringify(id)}`);
  }

  private mustRole(id: string): Indexed<RoleRecord> {
    return found(this.state.role(id), `ACL role ${JSON.stringify(id)}`);
  }

  private tokenView(t: Indexed<TokenRecord>): TokenView {
    const r = t.record;
    return {
      accessorId: r.accessorId,
      ...(r.accessorId === ANONYMOUS_ACCESSOR_ID ? { secretId: 'anonymous' } : {}),
      description: r.description,
      policies: r.policies.flatMap((id) => linkOf(id, this.state.policy(id)?.record.name)),
      roles: r.roles.flatMap((id) => linkOf(id, this.state.role(id)?.record.name)),
      local: r.local,
      createTime: r.createTime,
      createIndex: t.createIndex,
      modifyIndex: t.modifyIndex,
    };
  }

  private roleView(r: Indexed<RoleRecord>): RoleView {
    return { ...r.record, policies: r.record.policies.flatMap((id) => linkOf(id, this.state.policy(id)?.record.name)), createIndex: r.createIndex, modifyIndex: r.modifyIndex };
  }

  private now(): string {
    return new Date(this.opts.clock.now()).toISOString();
  }
}

/**
 * The ACL admin of a server, for the ACL APIs.
 * @throws BeaconError `unauthorized` without `--acl` (Consul: 401 "ACL support disabled").
 */
export function aclAdminOf(deps: { aclAdmin?: AclAdmin | undefined }): AclAdmin {
  if (!deps.aclAdmin) throw new BeaconError('unauthorized', 'ACL support disabled');
  return deps.aclAdmin;
}

function policyView(p: Indexed<PolicyRecord>): PolicyView {
  const { parsed: _parsed, ...rest } = p.record;
  return { ...rest, createIndex: p.createIndex, modifyIndex: p.modifyIndex };
}

/** A deleted policy or role drops out of the links shown, as in Consul. */
function linkOf(id: string, name: string | undefined): Link[] {
  return name === undefined ? [] : [{ id, name }];
}

function policyRecord(id: string, input: PolicyInput): PolicyRecord {
  const rules = input.rules ?? '';
  const datacenters = input.datacenters ?? [];
  if (datacenters.length > 16 || datacenters.some((d) => typeof d !== 'string' || d.length > 64)) throw errors.invalid('Datacenters: at most 16 names of at most 64 characters');
  return { id, name: name(input.name, 'policy'), description: description(input.description), rules, parsed: parseRules(rules), datacenters };
}

function links(refs: LinkRef[] | undefined, what: 'policy' | 'role', byId: (id: string) => string | undefined, byName: (n: string) => string | undefined): string[] {
  if (!refs) return [];
  if (refs.length > LINKS_MAX) throw errors.invalid(`at most ${LINKS_MAX} ${what} links per token`);
  const out = new Set<string>();
  for (const ref of refs) {
    const id = ref.id ? byId(ref.id) : ref.name ? byName(ref.name) : undefined;
    if (id === undefined) {
      if (!ref.id && !ref.name) throw errors.invalid(`a ${what} link needs an ID or a Name`);
      throw errors.invalid(`no ${what} with ${ref.id ? `ID ${JSON.stringify(ref.id)}` : `Name ${JSON.stringify(ref.name)}`}`);
    }
    out.add(id);
  }
  return [...out];
}

function name(n: unknown, what: string): string {
  if (typeof n !== 'string' || !NAME_RE.test(n)) throw errors.invalid(`the ${what} name must be 1 to 128 letters, digits, "-" or "_"; got ${JSON.stringify(n)}`);
  return n;
}

function description(d: unknown): string {
  if (d === undefined) return '';
  if (typeof d !== 'string' || d.length > DESCRIPTION_MAX) throw errors.invalid(`Description must be a string of at most ${DESCRIPTION_MAX} characters`);
  return d;
}

function assertUuid(v: string, what: string): void {
  if (!UUID_RE.test(v)) throw errors.invalid(`${what} must be a UUID; got ${JSON.stringify(v)}`);
}

function put(key: string, value: unknown): Op {
  return { type: 'put', key, value: typeof value === 'string' ? value : JSON.stringify(value) };
}

function absent(key: string): Compare {
  return { key, target: 'exists', value: false };
}

function unchanged(key: string, modRevision: number): Compare {
  return { key, target: 'modRevision', op: 'equal', value: modRevision };
}

/** @throws BeaconError `not_found` naming `what` when `x` is absent. */
function found<T>(x: Indexed<T> | undefined, what: string): Indexed<T> {
  if (!x) throw errors.notFound(`${what} not found`);
  return x;
}

/** Deletes a record unless it changed since it was read, with the index keys that go with it. */
function removal(key: string, cur: { modifyIndex: number }, ...alongside: string[]): { compare: Compare[]; success: Op[] } {
  return { compare: [unchanged(key, cur.modifyIndex)], success: [key, ...alongside].map((k): Op => ({ type: 'delete', key: k })) };
}

function tokenOps(t: TokenRecord): Op[] {
  return [put(ACL_KEYS.token(t.accessorId), t), put(ACL_KEYS.secret(t.secretHash), t.accessorId)];
}
