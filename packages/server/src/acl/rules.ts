import { errors } from '@beacon/core';
import { ACL_GLOBAL_KINDS, ACL_NAMED_KINDS, type AclGlobalKind, type AclNamedKind, type AclPolicyLevel, type AclRule } from './types.js';

/** Rules text longer than this is refused: a policy is read on every server and kept in memory. */
export const RULES_MAX_BYTES = 64 * 1024;

const LEVELS: readonly AclPolicyLevel[] = ['read', 'write', 'list', 'deny'];

type Head = { kind: AclNamedKind; prefix: boolean } | { kind: AclGlobalKind; global: true };

/** What a rule's first word means: `service`, `service_prefix`, `operator`, … */
function headOf(word: string): Head | undefined {
  for (const k of ACL_NAMED_KINDS) {
    if (word === k) return { kind: k, prefix: false };
    if (word === `${k}_prefix`) return { kind: k, prefix: true };
  }
  for (const k of ACL_GLOBAL_KINDS) if (word === k) return { kind: k, global: true };
  return undefined;
}

const KNOWN_WORDS = [...ACL_NAMED_KINDS.flatMap((k) => [k, `${k}_prefix`]), ...ACL_GLOBAL_KINDS].join(', ');

/** Consul allows `list` on keys only: it is about enumerating a key prefix. */
function levelOf(value: string, kind: AclNamedKind | AclGlobalKind, where: string): AclPolicyLevel {
  const level = LEVELS.find((l) => l === value);
  if (level === undefined) throw errors.invalid(`${where}: policy must be one of read, write, list, deny; found ${JSON.stringify(value)}`);
  if (level === 'list' && kind !== 'key') throw errors.invalid(`${where}: "list" applies to key rules only; use read, write or deny for ${kind}`);
  return level;
}

/**
 * Parses a policy's rules, in either form Consul accepts: JSON (`{"service_prefix": {"": {"policy":
 * "read"}}, "operator": "read"}`) or the HCL subset people write (`service_prefix "" { policy =
 * "read" }`, `operator = "read"`, comments with `#`, `//` and `/* *\/`). Empty text is no rules.
 * @throws BeaconError `invalid_argument` naming the line and what was expected there.
 */
export function parseRules(text: string): AclRule[] {
  if (Buffer.byteLength(text) > RULES_MAX_BYTES) throw errors.invalid(`rules are ${Buffer.byteLength(text)} bytes; at most ${RULES_MAX_BYTES} are allowed`);
  return /^[{[]/.test(text.trimStart()) ? parseJsonRules(text) : parseHclRules(text);
}

// ---- JSON ----------------------------------------------------------------------------------

function parseJsonRules(text: string): AclRule[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    const at = /position (\d+)/.exec((err as Error).message);
    const line = at ? text.slice(0, Number(at[1])).split('\n').length : undefined;
    throw errors.invalid(`rules are not valid JSON${line ? ` (line ${line})` : ''}: ${(err as Error).message}`);
  }
  if (!isObject(doc)) throw errors.invalid('JSON rules must be an object such as {"service_prefix": {"": {"policy": "read"}}}');
  const rules: AclRule[] = [];
  for (const [word, body] of Object.entries(doc)) {
    const head = headOf(word);
    if (!head) throw errors.invalid(`rules: unknown rule ${JSON.stringify(word)}; expected one of ${KNOWN_WORDS}`);
    if ('global' in head) {
      if (typeof body !== 'string') throw errors.invalid(`rules: "${word}" takes a level string, e.g. "${word}": "read"`);
      rules.push({ kind: head.kind, level: levelOf(body, head.kind, `rules: "${word}"`) });
      continue;
    }
    if (!isObject(body)) throw errors.invalid(`rules: "${word}" takes an object of names, e.g. "${word}": {"web": {"policy": "read"}}`);
    for (const [name, block] of Object.entries(body)) {
      const where = `rules: ${word} ${JSON.stringify(name)}`;
      if (!isObject(block) || typeof block.policy !== 'string') throw errors.invalid(`${where}: expected {"policy": "read" | "write" | "deny"${head.kind === 'key' ? ' | "list"' : ''}}`);
      const extra = Object.keys(block).find((k) => k !== 'policy');
      if (extra !== undefined) throw errors.invalid(`${where}: unsupported attribute ${JSON.stringify(extra)}; only "policy" is understood`);
      rules.push({ kind: head.kind, prefix: head.prefix, name, level: levelOf(block.policy, head.kind, where) });
    }
  }
  return rules;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

// ---- HCL -----------------------------------------------------------------------------------

type Token = { type: 'word' | 'string' | '{' | '}' | '=' | 'end'; text: string; line: number };

function describe(t: Token): string {
  switch (t.type) {
    case 'end':
      return 'the end of the rules';
    case 'string':
      return `the string ${JSON.stringify(t.text)}`;
    case 'word':
      return `"${t.text}"`;
    case '{':
    case '}':
    case '=':
      return `"${t.type}"`;
  }
}

function tokenize(text: string): Token[] {
  const out: Token[] = [];
  let line = 1;
  let i = 0;
  const fail = (what: string): never => {
    throw errors.invalid(`rules line ${line}: ${what}`);
  };
  while (i < text.length) {
    const c = text[i]!;
    if (c === '\n') {
      line++;
      i++;
    } else if (c === ' ' || c === '\t' || c === '\r' || c === ',') {
      i++;
    } else if (c === '#' || (c === '/' && text[i + 1] === '/')) {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (c === '/' && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2);
      if (end < 0) fail('a /* comment is never closed');
      for (let j = i; j < end; j++) if (text[j] === '\n') line++;
      i = end + 2;
    } else if (c === '{' || c === '}' || c === '=') {
      out.push({ type: c, text: c, line });
      i++;
    } else if (c === '"') {
      let s = '';
      const start = line;
      i++;
      for (;;) {
        if (i >= text.length || text[i] === '\n') throw errors.invalid(`rules line ${start}: a string is never closed`);
        const ch = text[i]!;
        if (ch === '"') break;
        if (ch === '\\') {
          const next = text[i + 1];
          if (next === '"' || next === '\\') s += next;
          else if (next === 'n') s += '\n';
          else if (next === 't') s += '\t';
          else fail(`unknown escape \\${next ?? ''} in a string`);
          i += 2;
          continue;
        }
        s += ch;
        i++;
      }
      i++;
      out.push({ type: 'string', text: s, line: start });
    } else if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_-]*/.exec(text.slice(i, i + 256))!;
      out.push({ type: 'word', text: m[0], line });
      i += m[0].length;
    } else {
      fail(`unexpected character ${JSON.stringify(c)}`);
    }
  }
  out.push({ type: 'end', text: '', line });
  return out;
}

function parseHclRules(text: string): AclRule[] {
  const tokens = tokenize(text);
  let at = 0;
  const peek = () => tokens[at]!;
  const expect = (type: Token['type'], what: string): Token => {
    const t = tokens[at]!;
    if (t.type !== type) throw errors.invalid(`rules line ${t.line}: expected ${what}, found ${describe(t)}`);
    at++;
    return t;
  };
  const rules: AclRule[] = [];
  while (peek().type !== 'end') {
    const word = expect('word', `a rule such as service_prefix "" { policy = "read" } or operator = "read"`);
    const head = headOf(word.text);
    if (!head) throw errors.invalid(`rules line ${word.line}: unknown rule "${word.text}"; expected one of ${KNOWN_WORDS}`);
    if ('global' in head) {
      expect('=', `"=" after ${word.text} (as in ${word.text} = "read")`);
      const value = expect('string', `a quoted level after ${word.text} =`);
      rules.push({ kind: head.kind, level: levelOf(value.text, head.kind, `rules line ${value.line}`) });
      continue;
    }
    const name = expect('string', `a quoted name after ${word.text} (as in ${word.text} "web" { policy = "read" })`);
    expect('{', `"{" after ${word.text} ${JSON.stringify(name.text)}`);
    let level: AclPolicyLevel | undefined;
    while (peek().type !== '}') {
      const attr = expect('word', `policy = "…" or "}" inside ${word.text} ${JSON.stringify(name.text)}`);
      if (attr.text !== 'policy') throw errors.invalid(`rules line ${attr.line}: unsupported attribute "${attr.text}"; only policy is understood`);
      expect('=', '"=" after policy');
      const value = expect('string', 'a quoted level after policy =');
      level = levelOf(value.text, head.kind, `rules line ${value.line}`);
    }
    const close = expect('}', '"}"');
    if (level === undefined) throw errors.invalid(`rules line ${close.line}: ${word.text} ${JSON.stringify(name.text)} has no policy = "…"`);
    rules.push({ kind: head.kind, prefix: head.prefix, name: name.text, level });
  }
  return rules;
}
