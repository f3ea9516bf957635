import { parse as parseYaml, YAMLParseError } from 'yaml';
import { isBeaconError, type CheckSpec } from '@beacon/core';
import { normalizeRegistration, type CheckTargetPolicy, type RegistrationInput } from '@beacon/server';
import { consulDocument, isConsulDocument } from './consul-format.js';
import { isObj } from './fields.js';
import { nativeDefinition } from './native-format.js';

export type DefinitionFormat = 'beacon' | 'consul';
export type FileSyntax = 'json' | 'yaml';

/** One service definition, validated the way the server will validate it. */
export interface AgentDefinition {
  /** Instance id (given, or derived as the server would derive it). */
  id: string;
  /** The file it came from and its place there, for messages: `web.json: services[1]`. */
  origin: string;
  file: string;
  format: DefinitionFormat;
  /** What the agent sends, without `source` and `ttlMs` (the agent adds them); check ids explicit. */
  body: RegistrationInput;
  /** The checks as the server will hold them (ids, defaults filled), for the local scheduler. */
  checks: CheckSpec[];
  /** Compares two versions of a definition: equal keys need no update. */
  key: string;
}

/** The outcome of one file: its definitions, or why none of them was taken. */
export type FileResult =
  | { file: string; ok: true; format: DefinitionFormat; definitions: AgentDefinition[]; warnings: string[] }
  | { file: string; ok: false; error: string; warnings: string[] };

export interface ParseContext {
  /** Node name for definitions that name none (the agent's host). */
  node: string;
  /** Address for definitions that give none (Consul's definitions usually rely on the agent's). */
  defaultAddress: string;
  /** The agent's own target policy: what its checks may probe from this host. */
  policy: CheckTargetPolicy;
}

/** Which files of a config dir the agent reads; everything else (editor backups, .hcl, notes) is not a definition. */
export function syntaxOf(file: string): FileSyntax | 'hcl' | undefined {
  if (file.startsWith('.') || file.endsWith('~')) return undefined;
  const lower = file.toLowerCase();
  if (lower.endsWith('.json')) return 'json';
  if (lower.endsWith('.yaml') || lower.endsWith('.yml')) return 'yaml';
  if (lower.endsWith('.hcl')) return 'hcl';
  return undefined;
}

/**
 * Parses one definition file. A file is taken whole or not at all: any error (syntax, a bad
 * field, a check the agent's policy refuses, a duplicate id) rejects the file with a message
 * naming the file and the field, and other files are unaffected.
 */
export function parseDefinitionFile(file: string, text: string, ctx: ParseContext): FileResult {
  const warnings: string[] = [];
  const fail = (msg: string): FileResult => ({ file, ok: false, error: `${file}: ${msg}`, warnings });
  const syntax = syntaxOf(file);
  if (syntax === 'hcl') return fail('HCL is not supported; write the definition as JSON (Consul accepts the same definitions in JSON)');
  if (!syntax) return fail('not a definition file (expected .json, .yaml or .yml)');
  let doc: unknown;
  try {
    doc = syntax === 'json' ? JSON.parse(text) : parseYaml(text, { prettyErrors: true, uniqueKeys: true });
  } catch (err) {
    return fail(`invalid ${syntax.toUpperCase()}: ${describeSyntaxError(err, text)}`);
  }
  if (doc === null || doc === undefined) return { file, ok: true, format: 'beacon', definitions: [], warnings };

  let format: DefinitionFormat;
  let raw: Array<{ input: RegistrationInput; path: string }>;
  try {
    if (isConsulDocument(doc)) {
      format = 'consul';
      const m = consulDocument(doc as Record<string, unknown>);
      warnings.push(...m.warnings.map((w) => `${file}: ${w}`));
      raw = m.definitions;
    } else {
      format = 'beacon';
      if (Array.isArray(doc)) raw = doc.map((d, k) => ({ input: nativeDefinition(d, `[${k}]`), path: `[${k}]` }));
      else if (isObj(doc)) raw = [{ input: nativeDefinition(doc, ''), path: '' }];
      else return fail('expected a service definition (an object), a list of them, or Consul\'s {"service": …} / {"services": […]}');
    }
  } catch (err) {
    return fail(messageOf(err));
  }

  const definitions: AgentDefinition[] = [];
  for (const { input, path } of raw) {
    const origin = path ? `${file}: ${path}` : file;
    let def: AgentDefinition;
    try {
      def = toDefinition(input, ctx, { file, origin, format });
    } catch (err) {
      return fail(`${path ? `${path}: ` : ''}${describeService(input)}${messageOf(err)}`);
    }
    const dup = definitions.find((d) => d.id === def.id);
    if (dup) return fail(`${path ? `${path}: ` : ''}instance id ${def.id} is defined twice in this file (also at ${dup.origin}); give each an explicit id`);
    definitions.push(def);
  }
  return { file, ok: true, format, definitions, warnings };
}

function toDefinition(input: RegistrationInput, ctx: ParseContext, where: { file: string; origin: string; format: DefinitionFormat }): AgentDefinition {
  const body: RegistrationInput = { ...input, address: input.address || ctx.defaultAddress, node: input.node || ctx.node };
  // The server's own rules, run here so a bad definition is reported against its file.
  const norm = normalizeRegistration({ ...body, source: 'agent' }, { node: ctx.node });
  ctx.policy.assertRegistration(norm);
  body.id = norm.spec.id;
  if (body.checks) body.checks = body.checks.map((c, k) => ({ ...c, id: norm.checks[k]!.id }));
  return { id: norm.spec.id, ...where, body, checks: norm.checks, key: JSON.stringify(body) };
}

function describeService(input: RegistrationInput): string {
  return typeof input.service === 'string' && input.service ? `service ${input.service}: ` : '';
}

function messageOf(err: unknown): string {
  if (isBeaconError(err)) return err.message;
  return err instanceof Error ? err.message : String(err);
}

function describeSyntaxError(err: unknown, text: string): string {
  if (err instanceof YAMLParseError) {
    const pos = err.linePos?.[0];
    const first = err.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
    return pos ? `${first} (line ${pos.line}, column ${pos.col})` : first;
  }
  // JSON.parse names a character offset; an editor wants a line and a column.
  const msg = messageOf(err);
  const m = / at position (\d+)/.exec(msg);
  if (!m) return msg;
  const before = text.slice(0, Number(m[1]));
  const line = before.split('\n').length;
  const col = Number(m[1]) - before.lastIndexOf('\n');
  return `${msg.replace(/ at position \d+.*$/, '')} (line ${line}, column ${col})`;
}
