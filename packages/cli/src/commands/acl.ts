import type { Command } from 'commander';
import type { LinkRef, PolicyView, RoleView, TokenView } from '@beacon/server';
import { collect, readValue } from '../flags.js';
import { connect, type GlobalOptions } from '../connection.js';
import { print, printList, type Column } from '../output.js';

/** Ids are UUIDs; anything else names a policy or role. */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const links = (l: { id: string; name: string }[]) => l.map((x) => x.name).join(',') || '-';

const TOKEN_COLUMNS: Column<TokenView>[] = [
  { header: 'accessor-id', value: (t) => t.accessorId },
  { header: 'description', value: (t) => t.description || '-' },
  { header: 'policies', value: (t) => links(t.policies) },
  { header: 'roles', value: (t) => links(t.roles) },
  { header: 'local', value: (t) => String(t.local), wide: true },
  { header: 'created', value: (t) => t.createTime, wide: true },
];

const POLICY_COLUMNS: Column<PolicyView>[] = [
  { header: 'id', value: (p) => p.id },
  { header: 'name', value: (p) => p.name },
  { header: 'description', value: (p) => p.description || '-' },
  { header: 'modify-index', value: (p) => p.modifyIndex, wide: true },
];

const ROLE_COLUMNS: Column<RoleView>[] = [
  { header: 'id', value: (r) => r.id },
  { header: 'name', value: (r) => r.name },
  { header: 'policies', value: (r) => links(r.policies) },
  { header: 'description', value: (r) => r.description || '-', wide: true },
];

/** Consul's `consul acl token read` layout: one field a line, links as `ID - name`. */
function showToken(t: TokenView): string {
  const lines = [`AccessorID:   ${t.accessorId}`];
  if (t.secretId !== undefined) lines.push(`SecretID:     ${t.secretId}`);
  lines.push(`Description:  ${t.description}`, `Local:        ${t.local}`, `Create Time:  ${t.createTime}`);
  if (t.policies.length) lines.push('Policies:', ...t.policies.map((p) => `   ${p.id} - ${p.name}`));
  if (t.roles.length) lines.push('Roles:', ...t.roles.map((r) => `   ${r.id} - ${r.name}`));
  return lines.join('\n') + '\n';
}

function showPolicy(p: PolicyView): string {
  return `ID:           ${p.id}\nName:         ${p.name}\nDescription:  ${p.description}\nRules:\n${p.rules.replace(/\n?$/, '\n')}`;
}

function showRole(r: RoleView): string {
  const lines = [`ID:           ${r.id}`, `Name:         ${r.name}`, `Description:  ${r.description}`];
  if (r.policies.length) lines.push('Policies:', ...r.policies.map((p) => `   ${p.id} - ${p.name}`));
  return lines.join('\n') + '\n';
}

/** `--policy-id`/`--policy-name` (or the role forms), repeatable, as the API's links. */
function refs(ids: string[] | undefined, names: string[] | undefined): LinkRef[] {
  return [...(ids ?? []).map((id) => ({ id })), ...(names ?? []).map((name) => ({ name }))];
}

/** A policy or role argument: a UUID is its id, anything else its name. */
const byIdOrName = (kind: 'policies' | 'roles', arg: string) => `/api/v1/acl/${kind}/${UUID.test(arg) ? '' : 'name/'}${encodeURIComponent(arg)}`;

interface TokenFlags {
  description?: string;
  policyId?: string[];
  policyName?: string[];
  roleId?: string[];
  roleName?: string[];
  local?: boolean;
}

/** `beacon acl …`: bootstrap, and the tokens, policies and roles of a server run with `--acl`. */
export function aclCommand(program: Command): void {
  const g = (cmd: Command): GlobalOptions => cmd.optsWithGlobals<GlobalOptions>();
  const acl = program.command('acl').description('access control: bootstrap, tokens, policies and roles (servers run with --acl)');

  acl
    .command('bootstrap')
    .description('create the first management token; works once per cluster (keep the SecretID safe: it is shown only now)')
    .action(async (_o, cmd: Command) => {
      const { body } = await connect(g(cmd)).request<TokenView>('PUT', '/api/v1/acl/bootstrap');
      print(g(cmd), body, () => showToken(body));
    });

  const token = acl.command('token').description('create, list, read, update and delete tokens');
  const linkOptions = (c: Command) =>
    c
      .option('--description <text>', 'what the token is for')
      .option('--policy-name <name>', 'link this policy (repeatable)', collect)
      .option('--policy-id <id>', 'link this policy by id (repeatable)', collect)
      .option('--role-name <name>', 'link this role (repeatable)', collect)
      .option('--role-id <id>', 'link this role by id (repeatable)', collect);
  const tokenBody = (o: TokenFlags) => ({
    ...(o.description !== undefined ? { description: o.description } : {}),
    policies: refs(o.policyId, o.policyName),
    roles: refs(o.roleId, o.roleName),
  });
  linkOptions(token.command('create').description('create a token; its SecretID is shown only now'))
    .option('--local', "Consul's datacenter-local flag (kept for compatibility)")
    .action(async (o: TokenFlags, cmd: Command) => {
      const { body } = await connect(g(cmd)).request<TokenView>('POST', '/api/v1/acl/tokens', { body: { ...tokenBody(o), ...(o.local ? { local: true } : {}) } });
      print(g(cmd), body, () => showToken(body));
    });
  token
    .command('list')
    .description('list tokens (never their secrets)')
    .action(async (_o, cmd: Command) => {
      const { body } = await connect(g(cmd)).request<TokenView[]>('GET', '/api/v1/acl/tokens');
      printList(g(cmd), body, body, TOKEN_COLUMNS, 'no tokens\n');
    });
  token
    .command('read [accessor-id]')
    .description('show a token by its AccessorID, or with --self the one this command uses')
    .option('--self', 'the token given by --token / BEACON_TOKEN (none: the anonymous token)')
    .action(async (id: string | undefined, o: { self?: boolean }, cmd: Command) => {
      if (!id && !o.self) throw cmd.error('give an accessor id, or --self', { exitCode: 2 });
      const path = o.self ? '/api/v1/acl/tokens/self' : `/api/v1/acl/tokens/${encodeURIComponent(id!)}`;
      const { body } = await connect(g(cmd)).request<TokenView>('GET', path);
      print(g(cmd), body, () => showToken(body));
    });
  linkOptions(token.command('update <accessor-id>').description("replace a token's description and links (e.g. give the anonymous token a policy)")).action(
    async (id: string, o: TokenFlags, cmd: Command) => {
      const { body } = await connect(g(cmd)).request<TokenView>('PUT', `/api/v1/acl/tokens/${encodeURIComponent(id)}`, { body: tokenBody(o) });
      print(g(cmd), body, () => showToken(body));
    },
  );
  token
    .command('delete <accessor-id>')
    .description('delete a token: requests with it are refused, its open watches end')
    .action(async (id: string, _o, cmd: Command) => {
      const { body } = await connect(g(cmd)).request<{ deleted: true }>('DELETE', `/api/v1/acl/tokens/${encodeURIComponent(id)}`);
      print(g(cmd), body, () => `deleted token ${id}\n`);
    });

  const policy = acl.command('policy').description('create, list, read and delete policies');
  policy
    .command('create')
    .description('create a policy from rules in HCL or JSON (see docs/security.md)')
    .requiredOption('--name <name>', 'letters, digits, - and _')
    .option('--description <text>', 'what the policy is for')
    .option('--rules <rules>', 'the rules; @file reads a file, - standard input', '')
    .action(async (o: { name: string; description?: string; rules: string }, cmd: Command) => {
      const rules = o.rules === '' ? '' : readValue(o.rules).toString('utf8');
      const { body } = await connect(g(cmd)).request<PolicyView>('POST', '/api/v1/acl/policies', { body: { name: o.name, rules, ...(o.description !== undefined ? { description: o.description } : {}) } });
      print(g(cmd), body, () => showPolicy(body));
    });
  policy
    .command('list')
    .description('list policies')
    .action(async (_o, cmd: Command) => {
      const { body } = await connect(g(cmd)).request<PolicyView[]>('GET', '/api/v1/acl/policies');
      printList(g(cmd), body, body, POLICY_COLUMNS, 'no policies\n');
    });
  policy
    .command('read <id-or-name>')
    .description('show a policy and its rules')
    .action(async (arg: string, _o, cmd: Command) => {
      const { body } = await connect(g(cmd)).request<PolicyView>('GET', byIdOrName('policies', arg));
      print(g(cmd), body, () => showPolicy(body));
    });
  policy
    .command('delete <id-or-name>')
    .description('delete a policy (tokens and roles linking it lose its rules at once)')
    .action(async (arg: string, _o, cmd: Command) => {
      const http = connect(g(cmd));
      const id = UUID.test(arg) ? arg : (await http.request<PolicyView>('GET', byIdOrName('policies', arg))).body.id;
      const { body } = await http.request<{ deleted: true }>('DELETE', `/api/v1/acl/policies/${encodeURIComponent(id)}`);
      print(g(cmd), body, () => `deleted policy ${arg}\n`);
    });

  const role = acl.command('role').description('create and list roles (named sets of policies)');
  role
    .command('create')
    .description('create a role linking policies')
    .requiredOption('--name <name>', 'letters, digits, - and _')
    .option('--description <text>', 'what the role is for')
    .option('--policy-name <name>', 'link this policy (repeatable)', collect)
    .option('--policy-id <id>', 'link this policy by id (repeatable)', collect)
    .action(async (o: { name: string; description?: string; policyId?: string[]; policyName?: string[] }, cmd: Command) => {
      const body = { name: o.name, policies: refs(o.policyId, o.policyName), ...(o.description !== undefined ? { description: o.description } : {}) };
      const { body: r } = await connect(g(cmd)).request<RoleView>('POST', '/api/v1/acl/roles', { body });
      print(g(cmd), r, () => showRole(r));
    });
  role
    .command('list')
    .description('list roles')
    .action(async (_o, cmd: Command) => {
      const { body } = await connect(g(cmd)).request<RoleView[]>('GET', '/api/v1/acl/roles');
      printList(g(cmd), body, body, ROLE_COLUMNS, 'no roles\n');
    });
}
