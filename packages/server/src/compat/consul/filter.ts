import { errors } from '@beacon/core';

/**
 * Consul's `filter` query parameter: the go-bexpr expression language, evaluated against the JSON
 * objects an endpoint returns, so selectors name the fields exactly as clients see them
 * (`Service.Tags`, `ServiceMeta.version`, `NodeMeta["rack"]`, `Checks.Status`).
 *
 * Supported: `==`, `!=`, `is empty`, `is not empty`, `in`, `not in`, `contains`, `not contains`,
 * `matches`, `not matches`, `and`, `or`, `not`, parentheses; values quoted ("…" or `…`), numbers,
 * or bare words. A selector that passes through a list (`Checks.Status`) matches when any element
 * does; the negated operators are the negation of that.
 */

export type MatchOp = 'equal' | 'notEqual' | 'isEmpty' | 'isNotEmpty' | 'in' | 'notIn' | 'matches' | 'notMatches';

export type FilterExpr =
  | { kind: 'and' | 'or'; left: FilterExpr; right: FilterExpr }
  | { kind: 'not'; operand: FilterExpr }
  | { kind: 'match'; selector: string[]; op: MatchOp; value?: string; regex?: RegExp };

type Token =
  | { t: 'lparen' | 'rparen' | 'eq' | 'neq'; pos: number }
  | { t: 'word'; v: string; pos: number }
  | { t: 'string'; v: string; pos: number }
  | { t: 'number'; v: string; pos: number }
  | { t: 'selector'; path: string[]; text: string; pos: number };

const KEYWORDS = new Set(['and', 'or', 'not', 'in', 'contains', 'is', 'empty', 'matches']);
const MAX_LENGTH = 4096;
const MAX_REGEX = 512;

function fail(msg: string): never {
  throw errors.invalid(`Failed to create boolean expression evaluator: ${msg}`);
}

function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  const ident = /[a-zA-Z][a-zA-Z0-9_/]*/y;
  while (i < src.length) {
    const c = src[i]!;
    if (c === ' ' || c === '\t' || c === '\r' || c === '\n') {
      i++;
      continue;
    }
    if (c === '(') {
      out.push({ t: 'lparen', pos: i++ });
      continue;
    }
    if (c === ')') {
      out.push({ t: 'rparen', pos: i++ });
      continue;
    }
    if (src.startsWith('==', i)) {
      out.push({ t: 'eq', pos: i });
      i += 2;
      continue;
    }
    if (src.startsWith('!=', i)) {
      out.push({ t: 'neq', pos: i });
      i += 2;
      continue;
    }
    if (c === '"' || c === '`') {
      const [v, end] = readString(src, i);
      out.push({ t: 'string', v, pos: i });
      i = end;
      continue;
    }
    const num = /-?(0|[1-9][0-9]*)(\.[0-9]+)?/y;
    num.lastIndex = i;
    const nm = num.exec(src);
    if (nm && (c === '-' || /[0-9]/.test(c))) {
      const after = src[i + nm[0].length];
      if (after !== undefined && !/[\s)]/.test(after)) fail(`invalid number literal at position ${i}`);
      out.push({ t: 'number', v: nm[0], pos: i });
      i += nm[0].length;
      continue;
    }
    ident.lastIndex = i;
    const m = ident.exec(src);
    if (!m) fail(`unexpected ${JSON.stringify(c)} at position ${i}`);
    const start = i;
    const path = [m[0]];
    i += m[0].length;
    for (;;) {
      if (src[i] === '.') {
        ident.lastIndex = i + 1;
        const n = ident.exec(src);
        if (n) {
          path.push(n[0]);
          i += 1 + n[0].length;
          continue;
        }
        const d = /[0-9]+/y;
        d.lastIndex = i + 1;
        const dm = d.exec(src);
        if (dm) {
          path.push(dm[0]);
          i += 1 + dm[0].length;
          continue;
        }
        fail(`invalid selector at position ${i}`);
      }
      if (src[i] === '[') {
        let j = i + 1;
        while (src[j] === ' ') j++;
        if (src[j] !== '"' && src[j] !== '`') fail(`invalid index at position ${i}`);
        const [key, end] = readString(src, j);
        j = end;
        while (src[j] === ' ') j++;
        if (src[j] !== ']') fail(`unclosed index expression at position ${i}`);
        path.push(key);
        i = j + 1;
        continue;
      }
      break;
    }
    const text = src.slice(start, i);
    if (path.length === 1 && KEYWORDS.has(path[0]!)) out.push({ t: 'word', v: path[0]!, pos: start });
    else out.push({ t: 'selector', path, text, pos: start });
  }
  return out;
}

function readString(src: string, i: number): [string, number] {
  const q = src[i]!;
  let j = i + 1;
  let v = '';
  while (j < src.length && src[j] !== q) {
    if (q === '"' && src[j] === '\\' && j + 1 < src.length) {
      const e = src[j + 1]!;
      v += e === 'n' ? '\n' : e === 't' ? '\t' : e === 'r' ? '\r' : e;
      j += 2;
      continue;
    }
    v += src[j];
    j++;
  }
  if (j >= src.length) fail('unterminated string literal');
  return [v, j + 1];
}

class Parser {
  private i = 0;
  constructor(private readonly toks: Token[]) {}

  parse(): FilterExpr {
    if (this.toks.length === 0) fail('empty expression');
    const e = this.or();
    if (this.i < this.toks.length) fail(`unexpected token at position ${this.toks[this.i]!.pos}`);
    return e;
  }

  private peek(): Token | undefined {
    return this.toks[this.i];
  }

  private isWord(w: string, at = this.i): boolean {
    const t = this.toks[at];
    return t?.t === 'word' && t.v === w;
  }

  private or(): FilterExpr {
    let left = this.and();
    while (this.isWord('or')) {
      this.i++;
      left = { kind: 'or', left, right: this.and() };
    }
    return left;
  }

  private and(): FilterExpr {
    let left = this.not();
    while (this.isWord('and')) {
      this.i++;
      left = { kind: 'and', left, right: this.not() };
    }
    return left;
  }

  private not(): FilterExpr {
    if (this.isWord('not')) {
      this.i++;
      return { kind: 'not', operand: this.not() };
    }
    if (this.peek()?.t === 'lparen') {
      this.i++;
      const e = this.or();
      if (this.peek()?.t !== 'rparen') fail('unmatched parentheses');
      this.i++;
      return e;
    }
    return this.match();
  }

  private match(): FilterExpr {
    const first = this.peek();
    if (!first || first.t === 'rparen' || first.t === 'eq' || first.t === 'neq' || first.t === 'lparen' || first.t === 'word')
      fail(`expected a selector or value at position ${first?.pos ?? 'end'}`);
    this.i++;
    const next = this.peek();
    // value (not) in selector
    if (this.isWord('in') || (this.isWord('not') && this.isWord('in', this.i + 1))) {
      const negated = this.isWord('not');
      this.i += negated ? 2 : 1;
      const sel = this.peek();
      if (sel?.t !== 'selector') fail('invalid selector after "in"');
      this.i++;
      return { kind: 'match', selector: sel.path, op: negated ? 'notIn' : 'in', value: rawValue(first) };
    }
    if (first.t !== 'selector') fail(`expected a selector at position ${first.pos}`);
    const selector = first.path;
    if (next?.t === 'eq' || next?.t === 'neq') {
      this.i++;
      return { kind: 'match', selector, op: next.t === 'eq' ? 'equal' : 'notEqual', value: this.value() };
    }
    if (this.isWord('is')) {
      this.i++;
      const negated = this.isWord('not');
      if (negated) this.i++;
      if (!this.isWord('empty')) fail('expected "empty" after "is"');
      this.i++;
      return { kind: 'match', selector, op: negated ? 'isNotEmpty' : 'isEmpty' };
    }
    const negated = this.isWord('not');
    const verbAt = negated ? this.i + 1 : this.i;
    if (this.isWord('contains', verbAt)) {
      this.i = verbAt + 1;
      return { kind: 'match', selector, op: negated ? 'notIn' : 'in', value: this.value() };
    }
    if (this.isWord('matches', verbAt)) {
      this.i = verbAt + 1;
      const value = this.value();
      return { kind: 'match', selector, op: negated ? 'notMatches' : 'matches', value, regex: compileRegex(value) };
    }
    fail(`expected an operator after ${first.text} at position ${next?.pos ?? 'end'}`);
  }

  private value(): string {
    const t = this.peek();
    if (!t || (t.t !== 'string' && t.t !== 'number' && t.t !== 'selector')) fail(`expected a value at position ${t?.pos ?? 'end'}`);
    this.i++;
    return rawValue(t);
  }
}

function rawValue(t: Token): string {
  switch (t.t) {
    case 'string':
    case 'number':
      return t.v;
    case 'selector':
      return t.text;
    default:
      return fail(`expected a value at position ${t.pos}`);
  }
}

/** Go's RE2 never backtracks; JavaScript's engine can, so patterns that nest quantifiers are refused. */
function compileRegex(src: string): RegExp {
  if (src.length > MAX_REGEX) fail(`regular expression longer than ${MAX_REGEX} characters`);
  if (/\((?:[^()\\]|\\.)*[+*}](?:\)|\)\?)[+*{]/.test(src) || /\\[1-9]/.test(src)) fail(`regular expression ${JSON.stringify(src)} uses nested quantifiers or backreferences, which are not supported`);
  try {
    return new RegExp(src);
  } catch (err) {
    return fail(`invalid regular expression ${JSON.stringify(src)}: ${(err as Error).message}`);
  }
}

export function parseFilter(src: string): FilterExpr {
  if (src.length > MAX_LENGTH) fail(`expression longer than ${MAX_LENGTH} characters`);
  let s = src.trim();
  // Consul's docs show filters wrapped in quotes; accept a fully quoted expression too.
  if (s.length >= 2 && s.startsWith('"') && s.endsWith('"') && !s.slice(1, -1).includes('"')) s = s.slice(1, -1);
  return new Parser(tokenize(s)).parse();
}

/** Fields whose value is a map with arbitrary keys: a missing key there is empty, not an error. */
const MAP_FIELDS = new Set(['Meta', 'NodeMeta', 'ServiceMeta', 'TaggedAddresses', 'ServiceTaggedAddresses', 'Header', 'metadata']);

interface Resolved {
  values: unknown[];
  /** True when the path went through a list of objects: any element may match. */
  multi: boolean;
}

function resolve(datum: unknown, path: string[]): Resolved {
  let current: unknown[] = [datum];
  let multi = false;
  let parentField = '';
  for (const seg of path) {
    const next: unknown[] = [];
    for (const v of current) {
      if (Array.isArray(v)) {
        multi = true;
        for (const el of v) step(el, seg, parentField, next);
      } else step(v, seg, parentField, next);
    }
    current = next;
    parentField = seg;
  }
  return { values: current, multi };
}

function step(v: unknown, seg: string, parentField: string, out: unknown[]): void {
  if (v === null || v === undefined) {
    out.push(undefined);
    return;
  }
  if (typeof v !== 'object') fail(`selector segment ${JSON.stringify(seg)} goes into a ${typeof v}`);
  const obj = v as Record<string, unknown>;
  if (Object.prototype.hasOwnProperty.call(obj, seg)) out.push(obj[seg]);
  else if (MAP_FIELDS.has(parentField)) out.push(undefined);
  else fail(`Selector ${JSON.stringify(seg)} is not valid`);
}

function coerce(raw: string, like: unknown): unknown {
  if (typeof like === 'boolean') {
    const r = raw.toLowerCase();
    if (['true', 't', '1'].includes(r)) return true;
    if (['false', 'f', '0'].includes(r)) return false;
    return fail(`${JSON.stringify(raw)} is not a boolean`);
  }
  if (typeof like === 'number') {
    const n = Number(raw);
    if (raw.trim() === '' || !Number.isFinite(n)) return fail(`${JSON.stringify(raw)} is not a number`);
    return n;
  }
  return raw;
}

function equalsOne(v: unknown, raw: string): boolean {
  if (v === undefined || v === null) return raw === '';
  if (typeof v === 'object') fail('== and != compare single values; use "in" or "contains" for lists and maps');
  return coerce(raw, v) === v;
}

function isEmpty(v: unknown): boolean {
  if (v === undefined || v === null) return true;
  if (typeof v === 'string' || Array.isArray(v)) return v.length === 0;
  if (typeof v === 'object') return Object.keys(v).length === 0;
  fail('"is empty" applies to strings, lists and maps');
}

function contains(v: unknown, raw: string): boolean {
  if (v === undefined || v === null) return false;
  if (typeof v === 'string') return v.includes(raw);
  if (Array.isArray(v)) return v.some((el) => el !== null && typeof el !== 'object' && coerce(raw, el) === el);
  if (typeof v === 'object') return Object.prototype.hasOwnProperty.call(v, raw);
  return fail('"in" and "contains" apply to strings, lists and maps');
}

function matchesOne(v: unknown, re: RegExp): boolean {
  if (v === undefined || v === null) return re.test('');
  if (typeof v !== 'string') fail('"matches" applies to strings');
  return re.test(v);
}

export function evaluate(e: FilterExpr, datum: unknown): boolean {
  switch (e.kind) {
    case 'and':
      return evaluate(e.left, datum) && evaluate(e.right, datum);
    case 'or':
      return evaluate(e.left, datum) || evaluate(e.right, datum);
    case 'not':
      return !evaluate(e.operand, datum);
    case 'match': {
      const { values, multi } = resolve(datum, e.selector);
      const any = (pred: (v: unknown) => boolean) => (multi ? values.some(pred) : pred(values[0]));
      switch (e.op) {
        case 'equal':
          return any((v) => equalsOne(v, e.value!));
        case 'notEqual':
          return !any((v) => equalsOne(v, e.value!));
        case 'isEmpty':
          return multi ? values.every(isEmpty) : isEmpty(values[0]);
        case 'isNotEmpty':
          return !(multi ? values.every(isEmpty) : isEmpty(values[0]));
        case 'in':
          return any((v) => contains(v, e.value!));
        case 'notIn':
          return !any((v) => contains(v, e.value!));
        case 'matches':
          return any((v) => matchesOne(v, e.regex!));
        case 'notMatches':
          return !any((v) => matchesOne(v, e.regex!));
      }
    }
  }
}

/** Keeps the items the expression accepts; no expression keeps everything. */
export function applyFilter<T>(items: readonly T[], expr: FilterExpr | undefined): T[] {
  if (!expr) return [...items];
  return items.filter((it) => evaluate(expr, it));
}
