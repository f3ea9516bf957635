import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '@beacon/core';
import { openEmbeddedStore } from '../store/embedded.js';
import type { Store } from '../store/types.js';
import { AclAdmin } from './admin.js';
import { ANONYMOUS_ACCESSOR_ID, GLOBAL_MANAGEMENT_ID } from './builtins.js';
import { allowed } from './decide.js';
import { AclState } from './state.js';

let store: Store;
let clock: ManualClock;
let state: AclState;
let admin: AclAdmin;

/** Two servers over one store: each with its own copy of the state. */
async function server(): Promise<{ state: AclState; admin: AclAdmin }> {
  const s = new AclState({ store, clock });
  await s.start();
  const a = new AclAdmin({ store, state: s, clock });
  await a.ensureBuiltins();
  return { state: s, admin: a };
}

const open: AclState[] = [];
beforeEach(async () => {
  clock = new ManualClock(1_700_000_000_000);
  store = await openEmbeddedStore({ path: ':memory:', clock });
  ({ state, admin } = await server());
  open.push(state);
});
afterEach(async () => {
  for (const s of open.splice(0)) await s.close();
  await store.close();
});

/** Resolves once the listener has heard a change. */
function nextChange(s: AclState): Promise<ReadonlySet<string> | 'all'> {
  return new Promise((resolve) => {
    const off = s.onChange((ids) => {
      off();
      resolve(ids);
    });
  });
}

describe('the ACL state', () => {
  it('has the built-ins: a global-management policy and an anonymous token with no rights', () => {
    expect(admin.readPolicy(GLOBAL_MANAGEMENT_ID)).toMatchObject({ name: 'global-management' });
    expect(admin.readToken(ANONYMOUS_ACCESSOR_ID)).toMatchObject({ secretId: 'anonymous', policies: [] });
    const anon = state.resolve(undefined);
    expect(anon).toMatchObject({ accessorId: ANONYMOUS_ACCESSOR_ID, management: false, rules: [] });
    expect(state.resolve('anonymous')).toBe(anon);
  });

  it('bootstraps once, with one winner among concurrent servers', async () => {
    const other = await server();
    open.push(other.state);
    const results = await Promise.allSettled([admin.bootstrap(), other.admin.bootstrap(), admin.bootstrap()]);
    const won = results.filter((r) => r.status === 'fulfilled');
    expect(won).toHaveLength(1);
    for (const r of results) if (r.status === 'rejected') expect(r.reason).toMatchObject({ code: 'forbidden', message: expect.stringMatching(/ACL bootstrap no longer allowed/) });
    const token = (won[0] as PromiseFulfilledResult<Awaited<ReturnType<AclAdmin['bootstrap']>>>).value;
    expect(token.policies).toEqual([{ id: GLOBAL_MANAGEMENT_ID, name: 'global-management' }]);
    expect(state.resolve(token.secretId).management).toBe(true);
    await other.state.caughtUp(await store.currentRevision());
    expect(other.state.resolve(token.secretId).accessorId).toBe(token.accessorId);
  });

  it('stores only a hash of the secret', async () => {
    const t = await admin.createToken({ description: 'ci' });
    const { kvs } = await store.range('/beacon/acl/');
    expect(kvs.some((kv) => kv.value.includes(t.secretId!) || kv.key.includes(t.secretId!))).toBe(false);
    expect(admin.readToken(t.accessorId).secretId).toBeUndefined();
  });

  it('gives a token the rules of its policies and its roles’ policies', async () => {
    const web = await admin.createPolicy({ name: 'web', rules: 'service "web" { policy = "write" }' });
    const readAll = await admin.createPolicy({ name: 'read-all', rules: '{"service_prefix": {"": {"policy": "read"}}}' });
    const role = await admin.createRole({ name: 'readers', policies: [{ name: 'read-all' }] });
    const t = await admin.createToken({ policies: [{ id: web.id }], roles: [{ name: 'readers' }] });
    expect(t.roles).toEqual([{ id: role.id, name: 'readers' }]);
    const authz = state.resolve(t.secretId);
    expect(allowed(authz, 'service', 'web', 'write')).toBe(true);
    expect(allowed(authz, 'service', 'db', 'read')).toBe(true);
    expect(allowed(authz, 'service', 'db', 'write')).toBe(false);
    expect(authz.management).toBe(false);
    expect(readAll.rules).toContain('service_prefix');
  });

  it('refuses an unknown secret, duplicate names and links to nothing', async () => {
    expect(() => state.resolve('00000000-0000-4000-8000-000000000000')).toThrow(/ACL not found/);
    await admin.createPolicy({ name: 'p' });
    await expect(admin.createPolicy({ name: 'p' })).rejects.toMatchObject({ code: 'conflict' });
    await expect(admin.createToken({ policies: [{ name: 'nope' }] })).rejects.toMatchObject({ code: 'invalid_argument', message: expect.stringMatching(/no policy with Name "nope"/) });
    await expect(admin.createPolicy({ name: 'bad name!' })).rejects.toMatchObject({ code: 'invalid_argument' });
    await expect(admin.createPolicy({ name: 'bad', rules: 'service "x" { policy = "rw" }' })).rejects.toMatchObject({ message: expect.stringMatching(/line 1/) });
    await expect(admin.deletePolicy(GLOBAL_MANAGEMENT_ID)).rejects.toMatchObject({ code: 'forbidden' });
    await expect(admin.deleteToken(ANONYMOUS_ACCESSOR_ID)).rejects.toMatchObject({ code: 'forbidden' });
  });

  it('tells which tokens changed when a token, a policy or a role changes, and forgets renamed names', async () => {
    const p = await admin.createPolicy({ name: 'p', rules: 'service "a" { policy = "read" }' });
    const role = await admin.createRole({ name: 'r', policies: [{ id: p.id }] });
    const direct = await admin.createToken({ policies: [{ id: p.id }] });
    const viaRole = await admin.createToken({ roles: [{ id: role.id }] });
    const bystander = await admin.createToken({});

    let heard = nextChange(state);
    await admin.updatePolicy(p.id, { name: 'p2', rules: 'service "a" { policy = "deny" }' });
    expect(await heard).toEqual(new Set([direct.accessorId, viaRole.accessorId]));
    expect(allowed(state.resolve(viaRole.secretId), 'service', 'a', 'read')).toBe(false);
    expect(state.policyByName('p')).toBeUndefined();
    expect(state.policyByName('p2')?.record.id).toBe(p.id);

    heard = nextChange(state);
    await admin.updateRole(role.id, { name: 'r', policies: [] });
    expect(await heard).toEqual(new Set([viaRole.accessorId]));

    // Resolved once (and so remembered) before it goes.
    expect(state.resolve(direct.secretId).accessorId).toBe(direct.accessorId);
    heard = nextChange(state);
    await admin.deleteToken(direct.accessorId);
    expect(await heard).toEqual(new Set([direct.accessorId]));
    expect(() => state.resolve(direct.secretId)).toThrow(/ACL not found/);
    expect(state.resolve(bystander.secretId).accessorId).toBe(bystander.accessorId);
  });

  it('lets the anonymous token be given policies', async () => {
    const p = await admin.createPolicy({ name: 'public', rules: 'service_prefix "" { policy = "read" }' });
    await admin.updateToken(ANONYMOUS_ACCESSOR_ID, { policies: [{ id: p.id }] });
    expect(allowed(state.resolve(undefined), 'service', 'web', 'read')).toBe(true);
    expect(allowed(state.resolve(undefined), 'service', 'web', 'write')).toBe(false);
  });

  it('keeps a token’s secret and local flag on update, and refuses a token deleting itself', async () => {
    const t = await admin.createToken({ description: 'a' });
    await expect(admin.updateToken(t.accessorId, { secretId: '11111111-1111-4111-8111-111111111111' })).rejects.toMatchObject({ code: 'invalid_argument' });
    await expect(admin.updateToken(t.accessorId, { local: true })).rejects.toMatchObject({ code: 'invalid_argument' });
    expect((await admin.updateToken(t.accessorId, { description: 'b', secretId: t.secretId! })).description).toBe('b');
    await expect(admin.deleteToken(t.accessorId, t.accessorId)).rejects.toMatchObject({ code: 'forbidden' });
  });
});
