import type { FastifyInstance, FastifyRequest } from 'fastify';
import { authorize } from '../../../acl/decide.js';
import { presentedSecret } from '../../../acl/secret.js';
import { aclAdminOf, type AclAdmin, type LinkRef, type PolicyInput, type PolicyView, type RoleInput, type RoleView, type TokenInput, type TokenView } from '../../../acl/admin.js';
import { ANONYMOUS_SECRET } from '../../../acl/builtins.js';
import type { ApiDeps } from '../../../http/deps.js';
import { jsonBody, param, send, type Query } from '../http.js';
import { Fields } from '../registration.js';

type Deps = Pick<ApiDeps, 'aclAdmin'>;

const linksJson = (links: { id: string; name: string }[]) => links.map((l) => ({ ID: l.id, Name: l.name }));

/** Consul's ACLToken: empty link lists are left out (omitempty), as Consul writes them. */
function tokenJson(t: TokenView): Record<string, unknown> {
  return {
    AccessorID: t.accessorId,
    ...(t.secretId !== undefined ? { SecretID: t.secretId } : {}),
    Description: t.description,
    ...(t.policies.length ? { Policies: linksJson(t.policies) } : {}),
    ...(t.roles.length ? { Roles: linksJson(t.roles) } : {}),
    Local: t.local,
    CreateTime: t.createTime,
    CreateIndex: t.createIndex,
    ModifyIndex: t.modifyIndex,
  };
}

function policyJson(p: PolicyView, withRules = true): Record<string, unknown> {
  return {
    ID: p.id,
    Name: p.name,
    Description: p.description,
    ...(withRules ? { Rules: p.rules } : {}),
    ...(p.datacenters.length ? { Datacenters: p.datacenters } : {}),
    CreateIndex: p.createIndex,
    ModifyIndex: p.modifyIndex,
  };
}

function roleJson(r: RoleView): Record<string, unknown> {
  return { ID: r.id, Name: r.name, Description: r.description, ...(r.policies.length ? { Policies: linksJson(r.policies) } : {}), CreateIndex: r.createIndex, ModifyIndex: r.modifyIndex };
}

function links(f: Fields, name: string): LinkRef[] | undefined {
  return f.list(name)?.map((l) => {
    const id = l.str('id');
    const n = l.str('name');
    return { ...(id ? { id } : {}), ...(n ? { name: n } : {}) };
  });
}

function tokenInput(req: FastifyRequest): TokenInput {
  const f = new Fields(jsonBody(req) ?? {}, 'token');
  const out: TokenInput = {};
  const set = <K extends keyof TokenInput>(k: K, v: TokenInput[K] | undefined) => {
    if (v !== undefined && v !== '') out[k] = v;
  };
  set('description', f.str('description'));
  set('policies', links(f, 'policies'));
  set('roles', links(f, 'roles'));
  set('local', f.bool('local'));
  set('accessorId', f.str('accessorid'));
  set('secretId', f.str('secretid'));
  return out;
}

function policyInput(req: FastifyRequest): PolicyInput {
  const f = new Fields(jsonBody(req) ?? {}, 'policy');
  const description = f.str('description');
  const rules = f.str('rules');
  const datacenters = f.strings('datacenters');
  return { name: f.str('name') ?? '', ...(description !== undefined ? { description } : {}), ...(rules !== undefined ? { rules } : {}), ...(datacenters ? { datacenters } : {}) };
}

function roleInput(req: FastifyRequest): RoleInput {
  const f = new Fields(jsonBody(req) ?? {}, 'role');
  const description = f.str('description');
  const policies = links(f, 'policies');
  return { name: f.str('name') ?? '', ...(description !== undefined ? { description } : {}), ...(policies ? { policies } : {}) };
}

/**
 * Consul's ACL API (/v1/acl/…): bootstrap, tokens, policies and roles, over the same ACL state as
 * the native API. Reads need `acl = "read"`, writes `acl = "write"`. A SecretID is shown when a
 * token is created (and for the public anonymous token): only its hash is stored, so unlike Consul
 * a later read cannot show it.
 */
export async function aclRoutes(app: FastifyInstance, d: Deps): Promise<void> {
  const route = { config: { acl: 'route' as const } };
  const admin = (req: FastifyRequest, access: 'read' | 'write'): AclAdmin => {
    const a = aclAdminOf(d);
    authorize(req.authz, 'acl', access);
    return a;
  };

  // Anyone may try: the first call wins, every later one is refused (the token is the credential).
  app.put('/acl/bootstrap', { config: { acl: 'open' } }, async (req, reply) => send(req, reply, tokenJson(await aclAdminOf(d).bootstrap())));

  // One datacenter, so nothing replicates: Consul's answer for a primary datacenter.
  app.get('/acl/replication', { config: { acl: 'open' } }, async (req, reply) => {
    aclAdminOf(d);
    const never = '0001-01-01T00:00:00Z';
    return send(req, reply, { Enabled: false, Running: false, SourceDatacenter: '', ReplicationType: '', ReplicatedIndex: 0, ReplicatedRoleIndex: 0, ReplicatedTokenIndex: 0, LastSuccess: never, LastError: never, LastErrorMessage: '' });
  });

  app.put('/acl/token', route, async (req, reply) => send(req, reply, tokenJson(await admin(req, 'write').createToken(tokenInput(req)))));
  // Any valid token may read itself (Consul needs no rule for it); no token reads the anonymous one.
  app.get('/acl/token/self', route, async (req, reply) => {
    const a = aclAdminOf(d);
    return send(req, reply, tokenJson(a.tokenBySecret(presentedSecret(req) ?? ANONYMOUS_SECRET)), a.index);
  });
  app.get<{ Params: { id: string } }>('/acl/token/:id', route, async (req, reply) => {
    const a = admin(req, 'read');
    return send(req, reply, tokenJson(a.readToken(req.params.id)), a.index);
  });
  app.put<{ Params: { id: string } }>('/acl/token/:id', route, async (req, reply) => send(req, reply, tokenJson(await admin(req, 'write').updateToken(req.params.id, tokenInput(req)))));
  app.delete<{ Params: { id: string } }>('/acl/token/:id', route, async (req, reply) => {
    await admin(req, 'write').deleteToken(req.params.id, req.authz.accessorId);
    return send(req, reply, true);
  });
  app.get('/acl/tokens', route, async (req, reply) => {
    const a = admin(req, 'read');
    const q = req.query as Query;
    const policy = param(q, 'policy');
    const role = param(q, 'role');
    return send(req, reply, a.listTokens({ ...(policy ? { policy } : {}), ...(role ? { role } : {}) }).map(tokenJson), a.index);
  });

  /** Policies and roles: the same six routes over the admin's calls for each. */
  const named = <V>(n: {
    one: 'policy' | 'role';
    many: 'policies' | 'roles';
    json: (v: V) => Record<string, unknown>;
    /** Listings may show less than one read (Consul's policy list stubs leave the rules out). */
    stub: (v: V) => Record<string, unknown>;
    create: (a: AclAdmin, req: FastifyRequest) => Promise<V>;
    update: (a: AclAdmin, id: string, req: FastifyRequest) => Promise<V>;
    read: (a: AclAdmin, id: string) => V;
    readByName: (a: AclAdmin, name: string) => V;
    remove: (a: AclAdmin, id: string) => Promise<void>;
    list: (a: AclAdmin, policy: string | undefined) => V[];
  }) => {
    app.put(`/acl/${n.one}`, route, async (req, reply) => send(req, reply, n.json(await n.create(admin(req, 'write'), req))));
    app.get<{ Params: { id: string } }>(`/acl/${n.one}/:id`, route, async (req, reply) => {
      const a = admin(req, 'read');
      return send(req, reply, n.json(n.read(a, req.params.id)), a.index);
    });
    app.get<{ Params: { name: string } }>(`/acl/${n.one}/name/:name`, route, async (req, reply) => {
      const a = admin(req, 'read');
      return send(req, reply, n.json(n.readByName(a, req.params.name)), a.index);
    });
    app.put<{ Params: { id: string } }>(`/acl/${n.one}/:id`, route, async (req, reply) => send(req, reply, n.json(await n.update(admin(req, 'write'), req.params.id, req))));
    app.delete<{ Params: { id: string } }>(`/acl/${n.one}/:id`, route, async (req, reply) => {
      await n.remove(admin(req, 'write'), req.params.id);
      return send(req, reply, true);
    });
    app.get(`/acl/${n.many}`, route, async (req, reply) => {
      const a = admin(req, 'read');
      return send(req, reply, n.list(a, param(req.query as Query, 'policy') || undefined).map(n.stub), a.index);
    });
  };
  named<PolicyView>({
    one: 'policy',
    many: 'policies',
    json: (p) => policyJson(p),
    stub: (p) => policyJson(p, false),
    create: (a, req) => a.createPolicy(policyInput(req)),
    update: (a, id, req) => a.updatePolicy(id, policyInput(req)),
    read: (a, id) => a.readPolicy(id),
    readByName: (a, name) => a.readPolicyByName(name),
    remove: (a, id) => a.deletePolicy(id),
    list: (a) => a.listPolicies(),
  });
  named<RoleView>({
    one: 'role',
    many: 'roles',
    json: roleJson,
    stub: roleJson,
    create: (a, req) => a.createRole(roleInput(req)),
    update: (a, id, req) => a.updateRole(id, roleInput(req)),
    read: (a, id) => a.readRole(id),
    readByName: (a, name) => a.readRoleByName(name),
    remove: (a, id) => a.deleteRole(id),
    list: (a, policy) => a.listRoles(policy ? { policy } : {}),
  });
}
