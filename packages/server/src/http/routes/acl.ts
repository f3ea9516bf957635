import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { errors } from '@beacon/core';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { allowed, authorize } from '../../acl/decide.js';
import { ACL_GLOBAL_KINDS, ACL_NAMED_KINDS } from '../../acl/types.js';
import { presentedSecret } from '../../acl/secret.js';
import { aclAdminOf, type AclAdmin, type LinkRef, type PolicyView, type RoleView } from '../../acl/admin.js';
import { ANONYMOUS_SECRET } from '../../acl/builtins.js';
import { RULES_MAX_BYTES } from '../../acl/rules.js';
import type { ApiDeps } from '../deps.js';
import { readErrors, writeErrors } from '../schemas.js';

type Deps = Pick<ApiDeps, 'aclAdmin'>;

const Opt = <T extends TSchema>(t: T) => Type.Optional(t);
const Name = Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9_-]+$' });
const Uuid = Type.String({ minLength: 36, maxLength: 36 });
const Description = Type.String({ maxLength: 1024 });

const LinkSchema = Type.Object({ id: Type.String(), name: Type.String() });
const LinkRefSchema = Type.Object({ id: Opt(Type.String({ maxLength: 128 })), name: Opt(Type.String({ maxLength: 128 })) }, { additionalProperties: false, description: 'by id or by name (looked up once, kept as the id)' });
const Links = Opt(Type.Array(LinkRefSchema, { maxItems: 64 }));

const TokenSchema = Type.Object({
  accessorId: Type.String(),
  secretId: Opt(Type.String({ description: 'only when the token is created (and for the public anonymous token): the server keeps a hash' })),
  description: Type.String(),
  policies: Type.Array(LinkSchema),
  roles: Type.Array(LinkSchema),
  local: Type.Boolean(),
  createTime: Type.String(),
  createIndex: Type.Integer(),
  modifyIndex: Type.Integer(),
});
const TokenInputSchema = Type.Object(
  { description: Opt(Description), policies: Links, roles: Links, local: Opt(Type.Boolean()), accessorId: Opt(Uuid), secretId: Opt(Uuid) },
  { additionalProperties: false },
);
const PolicySchema = Type.Object({
  id: Type.String(),
  name: Type.String(),
  description: Type.String(),
  rules: Type.String(),
  datacenters: Type.Array(Type.String()),
  createIndex: Type.Integer(),
  modifyIndex: Type.Integer(),
});
const PolicyInputSchema = Type.Object(
  {
    name: Name,
    description: Opt(Description),
    rules: Opt(Type.String({ maxLength: RULES_MAX_BYTES, description: 'HCL (`service_prefix "" { policy = "read" }`) or JSON; see docs/security.md' })),
    datacenters: Opt(Type.Array(Type.String({ maxLength: 64 }), { maxItems: 16 })),
  },
  { additionalProperties: false },
);
const RoleSchema = Type.Object({ id: Type.String(), name: Type.String(), description: Type.String(), policies: Type.Array(LinkSchema), createIndex: Type.Integer(), modifyIndex: Type.Integer() });
const RoleInputSchema = Type.Object({ name: Name, description: Opt(Description), policies: Links }, { additionalProperties: false });
const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 128 }) });
const NameParams = Type.Object({ name: Type.String({ minLength: 1, maxLength: 128 }) });
const Deleted = Type.Object({ deleted: Type.Literal(true) });
const AuthorizeQuery = Type.Object(
  {
    resource: Type.Union([...ACL_NAMED_KINDS, ...ACL_GLOBAL_KINDS].map((k) => Type.Literal(k))),
    name: Opt(Type.String({ maxLength: 512, description: 'the resource\'s name; required for every kind but operator and acl' })),
    access: Type.Union([Type.Literal('read'), Type.Literal('list'), Type.Literal('write')]),
  },
  { additionalProperties: false },
);

/** How the routes of policies or roles reach the admin; `I` is the body a create or an update takes. */
interface NamedKind<I> {
  path: 'policies' | 'roles';
  noun: 'Policy' | 'Role';
  createSummary: string;
  schema: TSchema;
  input: TSchema;
  listQuery: TSchema;
  create(a: AclAdmin, body: I): Promise<PolicyView | RoleView>;
  list(a: AclAdmin, query: { policy?: string }): (PolicyView | RoleView)[];
  read(a: AclAdmin, id: string): PolicyView | RoleView;
  readByName(a: AclAdmin, name: string): PolicyView | RoleView;
  update(a: AclAdmin, id: string, body: I): Promise<PolicyView | RoleView>;
  remove(a: AclAdmin, id: string): Promise<void>;
}

const withoutUndefined = (refs: { id?: string | undefined; name?: string | undefined }[] | undefined): LinkRef[] | undefined =>
  refs?.map((r) => ({ ...(r.id !== undefined ? { id: r.id } : {}), ...(r.name !== undefined ? { name: r.name } : {}) }));

/** Drops absent fields, so the admin sees only what the body gave (exactOptionalPropertyTypes). */
function defined<T extends object>(o: T): { [K in keyof T]: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as { [K in keyof T]: Exclude<T[K], undefined> };
}

/**
 * The native ACL API under /api/v1/acl: bootstrap, tokens, policies, roles. Reads need
 * `acl = "read"`, writes `acl = "write"`; without `--acl` every route answers 401.
 */
export const aclRoutes: FastifyPluginAsyncTypebox<Deps> = async (app, deps) => {
  const config = { acl: 'route' as const };
  const admin = (req: FastifyRequest, access: 'read' | 'write'): AclAdmin => {
    const a = aclAdminOf(deps);
    authorize(req.authz, 'acl', access);
    return a;
  };
  const tags = ['acl'];
  const reads = readErrors('unauthorized', 'not_found');
  const writes = writeErrors('unauthorized', 'not_found', 'conflict');

  app.put(
    '/acl/bootstrap',
    {
      config: { acl: 'open' },
      schema: {
        operationId: 'aclBootstrap',
        tags,
        summary: 'Create the first management token (once)',
        description: 'Needs no token. Succeeds exactly once per store (all servers of a cluster included); later calls answer 403.',
        security: [{}],
        response: { 200: TokenSchema, ...writeErrors('unauthorized', 'forbidden') },
      },
    },
    async () => aclAdminOf(deps).bootstrap(),
  );

  app.post(
    '/acl/tokens',
    { config, schema: { operationId: 'aclCreateToken', tags, summary: 'Create a token', description: 'The answer carries the SecretID; it is never shown again.', body: TokenInputSchema, response: { 200: TokenSchema, ...writes } } },
    async (req) => {
      const b = req.body;
      return admin(req, 'write').createToken(defined({ ...b, policies: withoutUndefined(b.policies), roles: withoutUndefined(b.roles) }));
    },
  );
  app.get(
    '/acl/tokens',
    {
      config,
      schema: {
        operationId: 'aclListTokens',
        tags,
        summary: 'List tokens',
        querystring: Type.Object({ policy: Opt(Type.String({ maxLength: 128 })), role: Opt(Type.String({ maxLength: 128 })) }),
        response: { 200: Type.Array(TokenSchema), ...reads },
      },
    },
    async (req) => admin(req, 'read').listTokens(defined(req.query)),
  );
  app.get(
    '/acl/tokens/self',
    {
      config,
      schema: { operationId: 'aclReadSelf', tags, summary: "The request's own token", description: 'Needs no rule: any valid token may read itself; no token reads the anonymous one.', response: { 200: TokenSchema, ...reads } },
    },
    async (req) => aclAdminOf(deps).tokenBySecret(presentedSecret(req) ?? ANONYMOUS_SECRET),
  );
  app.get(
    '/acl/authorize',
    {
      config,
      schema: {
        operationId: 'aclAuthorize',
        tags,
        summary: 'Whether the request\'s own token may do something',
        description:
          'The same decision every route makes (Consul\'s UI asks /v1/internal/acl/authorize). Needs no rule: any valid token may ask about itself; no token asks about the anonymous one. A GET, so asking is neither rate limited nor audited as a write. The web UI asks it before showing write buttons.',
        querystring: AuthorizeQuery,
        response: { 200: Type.Object({ allowed: Type.Boolean() }), ...readErrors('unauthorized', 'invalid_argument') },
      },
    },
    async (req) => {
      aclAdminOf(deps);
      const { resource, name, access } = req.query;
      const global = resource === 'operator' || resource === 'acl';
      if (global === (name !== undefined)) throw errors.invalid(global ? `${resource} has no name` : `${resource} needs a name`);
      return { allowed: allowed(req.authz, resource, name ?? '', access) };
    },
  );
  app.get(
    '/acl/tokens/:id',
    { config, schema: { operationId: 'aclReadToken', tags, summary: 'One token, by AccessorID', params: IdParams, response: { 200: TokenSchema, ...reads } } },
    async (req) => admin(req, 'read').readToken(req.params.id),
  );
  app.put(
    '/acl/tokens/:id',
    {
      config,
      schema: {
        operationId: 'aclUpdateToken',
        tags,
        summary: "Replace a token's description and links",
        description: 'The SecretID and `local` cannot change.',
        params: IdParams,
        body: TokenInputSchema,
        response: { 200: TokenSchema, ...writes },
      },
    },
    async (req) => {
      const b = req.body;
      return admin(req, 'write').updateToken(req.params.id, defined({ ...b, policies: withoutUndefined(b.policies), roles: withoutUndefined(b.roles) }));
    },
  );
  app.delete(
    '/acl/tokens/:id',
    {
      config,
      schema: { operationId: 'aclDeleteToken', tags, summary: 'Delete a token', description: "Its open watches end. A token cannot delete itself, and the anonymous token cannot be deleted.", params: IdParams, response: { 200: Deleted, ...writes } },
    },
    async (req) => {
      await admin(req, 'write').deleteToken(req.params.id, req.authz.accessorId);
      return { deleted: true as const };
    },
  );

  /** Policies and roles: the same six routes over the admin's calls for each. */
  const named = <I>(n: NamedKind<I>) => {
    const { path, noun, schema } = n;
    app.post(
      `/acl/${path}`,
      { config, schema: { operationId: `aclCreate${noun}`, tags, summary: n.createSummary, body: n.input, response: { 200: schema, ...writes } } },
      async (req) => n.create(admin(req, 'write'), req.body as I),
    );
    app.get(
      `/acl/${path}`,
      { config, schema: { operationId: `aclList${noun}s`, tags, summary: `List ${path}`, querystring: n.listQuery, response: { 200: Type.Array(schema), ...reads } } },
      async (req) => n.list(admin(req, 'read'), defined(req.query as { policy?: string })),
    );
    app.get(
      `/acl/${path}/:id`,
      { config, schema: { operationId: `aclRead${noun}`, tags, summary: `One ${noun.toLowerCase()}, by id`, params: IdParams, response: { 200: schema, ...reads } } },
      async (req) => n.read(admin(req, 'read'), (req.params as { id: string }).id),
    );
    app.get(
      `/acl/${path}/name/:name`,
      { config, schema: { operationId: `aclRead${noun}ByName`, tags, summary: `One ${noun.toLowerCase()}, by name`, params: NameParams, response: { 200: schema, ...reads } } },
      async (req) => n.readByName(admin(req, 'read'), (req.params as { name: string }).name),
    );
    app.put(
      `/acl/${path}/:id`,
      { config, schema: { operationId: `aclUpdate${noun}`, tags, summary: `Replace a ${noun.toLowerCase()}`, description: `Tokens using it get its new rules at once; their open watches start over with what they may see.`, params: IdParams, body: n.input, response: { 200: schema, ...writes } } },
      async (req) => n.update(admin(req, 'write'), (req.params as { id: string }).id, req.body as I),
    );
    app.delete(
      `/acl/${path}/:id`,
      { config, schema: { operationId: `aclDelete${noun}`, tags, summary: `Delete a ${noun.toLowerCase()}`, params: IdParams, response: { 200: Deleted, ...writes } } },
      async (req) => {
        await n.remove(admin(req, 'write'), (req.params as { id: string }).id);
        return { deleted: true as const };
      },
    );
  };
  named<Static<typeof PolicyInputSchema>>({
    path: 'policies',
    noun: 'Policy',
    createSummary: 'Create a policy',
    schema: PolicySchema,
    input: PolicyInputSchema,
    listQuery: Type.Object({}),
    create: (a, b) => a.createPolicy(defined(b)),
    list: (a) => a.listPolicies(),
    read: (a, id) => a.readPolicy(id),
    readByName: (a, name) => a.readPolicyByName(name),
    update: (a, id, b) => a.updatePolicy(id, defined(b)),
    remove: (a, id) => a.deletePolicy(id),
  });
  named<Static<typeof RoleInputSchema>>({
    path: 'roles',
    noun: 'Role',
    createSummary: 'Create a role (a named set of policies)',
    schema: RoleSchema,
    input: RoleInputSchema,
    listQuery: Type.Object({ policy: Opt(Type.String({ maxLength: 128 })) }),
    create: (a, b) => a.createRole(defined({ ...b, policies: withoutUndefined(b.policies) })),
    list: (a, q) => a.listRoles(q),
    read: (a, id) => a.readRole(id),
    readByName: (a, name) => a.readRoleByName(name),
    update: (a, id, b) => a.updateRole(id, defined({ ...b, policies: withoutUndefined(b.policies) })),
    remove: (a, id) => a.deleteRole(id),
  });
};
