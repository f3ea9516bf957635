import { readFileSync } from 'node:fs';
import { isMap, isScalar, LineCounter, parseDocument, stringify, type Node } from 'yaml';
import { InvalidArgumentError, type Command, type Option } from 'commander';
import { collect } from './flags.js';

/**
 * A command's settings from a YAML or JSON file (JSON is YAML), with one key per flag: the keys,
 * their types and their checks all come from the command's own option definitions, so a new flag
 * is a new key without a second list to keep in step.
 *
 * Precedence, highest first: flag, environment variable, file, default. Commander applies flags
 * and environment variables before a `preAction` hook runs; the file then fills only what is
 * still at its default.
 */

/** Where an effective setting came from. */
export type SettingSource = 'default' | 'file' | 'env' | 'flag';

/** A setting as written in the file: the flag's name without `--` (and without `no-` for a negated flag). */
export function settingKey(o: Option): string {
  return o.long!.replace(o.negate ? /^--no-/ : /^--/, '');
}

/** The text each parsed value was given as, so that `--print-config` prints `10s`, not `10000`. */
export type RawValues = Map<string, unknown>;

/**
 * Records what was typed for every option whose parser turns text into something else, and
 * returns the record for {@link effectiveSettings}.
 */
export function recordRawValues(cmd: Command): RawValues {
  const raw: RawValues = new Map();
  for (const o of cmd.options) {
    const parse = o.parseArg;
    // A repeatable flag's value is already the list of what was typed.
    if (!parse || parse === collect) continue;
    o.parseArg = ((v: string, prev: unknown) => {
      const out = (parse as (v: string, prev: unknown) => unknown)(v, prev);
      raw.set(o.attributeName(), v);
      return out;
    }) as Option['parseArg'];
  }
  return raw;
}

function settings(cmd: Command, excluded: readonly string[]): Option[] {
  return cmd.options.filter((o) => o.long && !excluded.includes(settingKey(o)));
}

/** An error in the file, naming it, the line and the key: a usage error (exit 2), like a bad flag. */
function fail(cmd: Command, where: string, message: string): never {
  cmd.error(`error: ${where}: ${message}`, { code: 'beacon.config', exitCode: 2 });
}

/**
 * Reads `path` and sets every option still at its default from it. Unknown keys, wrong types
 * and values the flag itself would refuse are errors naming the file, line and key.
 */
export function applyConfigFile(cmd: Command, path: string, raw: RawValues, excluded: readonly string[]): void {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    fail(cmd, path, `cannot read the configuration file: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  const syntax = doc.errors[0];
  if (syntax) fail(cmd, `${path}:${lines.linePos(syntax.pos[0]).line}`, syntax.message);
  const at = (node: Node | null | undefined) => `${path}:${node?.range ? lines.linePos(node.range[0]).line : 1}`;
  if (doc.contents === null) return;
  if (!isMap(doc.contents)) fail(cmd, at(doc.contents), 'expected a mapping of settings (key: value)');
  const byKey = new Map(settings(cmd, excluded).map((o) => [settingKey(o), o]));
  for (const pair of doc.contents.items) {
    const keyNode = pair.key as Node | null;
    const key = isScalar(keyNode) ? String(keyNode.value) : undefined;
    const o = key === undefined ? undefined : byKey.get(key);
    if (!o || key === undefined) fail(cmd, at(keyNode), `unknown key ${JSON.stringify(key ?? String(keyNode))} (the keys are the flags of 'beacon ${cmd.name()} --help' without the --)`);
    const valueNode = pair.value as Node | null;
    const where = `${at(valueNode ?? keyNode)}: ${key}`;
    const attr = o.attributeName();
    // What a flag or variable gave was recorded when it was parsed; checking this value must not replace it.
    const given = raw.get(attr);
    let value: unknown;
    try {
      value = convert(o, valueNode?.toJSON() as unknown);
    } catch (err) {
      if (err instanceof InvalidArgumentError) fail(cmd, where, err.message);
      throw err;
    }
    const source = cmd.getOptionValueSource(attr);
    // Checked all the same: a mistake in the file is one whatever overrides it today.
    if (source !== undefined && source !== 'default') {
      if (given !== undefined) raw.set(attr, given);
      continue;
    }
    cmd.setOptionValueWithSource(attr, value, 'config');
    raw.set(attr, valueNode?.toJSON());
  }
}

/** A value from the file, checked as the flag would check it. */
function convert(o: Option, v: unknown): unknown {
  const type = (what: string) => new InvalidArgumentError(`expected ${what}, got ${v === null ? 'nothing' : JSON.stringify(v)}.`);
  if (o.isBoolean() || o.negate) {
    if (typeof v !== 'boolean') throw type('true or false');
    // A negated flag's key is its positive form: `dns: false` is `--no-dns`.
    return v;
  }
  if (o.parseArg === collect) {
    const list = typeof v === 'string' ? [v] : v;
    if (!Array.isArray(list) || !list.every((s) => typeof s === 'string')) throw type('a string or a list of strings');
    return list;
  }
  // Numbers are welcome where the flag parses its text (`dns-udp-processes: 4`); elsewhere a
  // number is more likely a mistake than a name.
  const text = typeof v === 'string' ? v : typeof v === 'number' && o.parseArg ? String(v) : undefined;
  if (text === undefined) throw type(o.parseArg ? 'a string or a number' : 'a string');
  return o.parseArg ? (o.parseArg as (v: string, prev: unknown) => unknown)(text, undefined) : text;
}

function sourceOf(commander: string | undefined): SettingSource | undefined {
  switch (commander) {
    case undefined:
      return undefined;
    case 'default':
      return 'default';
    case 'config':
      return 'file';
    case 'env':
      return 'env';
    case 'cli':
      return 'flag';
    default:
      throw new Error(`unexpected option value source ${commander}`);
  }
}

/** One effective setting: its key, the value as it was given, and where it came from. */
export interface EffectiveSetting {
  key: string;
  value: unknown;
  source: SettingSource;
  /** For `env`: the variable. */
  env?: string;
}

/** The settings that have a value, in the order of the command's help. */
export function effectiveSettings(cmd: Command, raw: RawValues, excluded: readonly string[]): EffectiveSetting[] {
  const out: EffectiveSetting[] = [];
  for (const o of settings(cmd, excluded)) {
    const attr = o.attributeName();
    const source = sourceOf(cmd.getOptionValueSource(attr));
    const value = cmd.getOptionValue(attr) as unknown;
    if (source === undefined || value === undefined) continue;
    // As given, so that it loads back: `10s` rather than the 10000 it was parsed to.
    const given = source === 'default' ? (o.defaultValueDescription ?? value) : (raw.get(attr) ?? value);
    out.push({ key: settingKey(o), value: given, source, ...(source === 'env' && o.envVar ? { env: o.envVar } : {}) });
  }
  return out;
}

/**
 * The effective settings as a configuration file, each with where it came from; unset ones are
 * listed commented out (deprecated, hidden ones left out), so the output is also a template.
 */
export function effectiveConfigYaml(cmd: Command, raw: RawValues, excluded: readonly string[]): string {
  const set = new Map(effectiveSettings(cmd, raw, excluded).map((s) => [s.key, s]));
  const out: string[] = [];
  for (const o of settings(cmd, excluded)) {
    const s = set.get(settingKey(o));
    if (s) out.push(`${s.key}: ${stringify(s.value, { collectionStyle: 'flow' }).trimEnd()}  # ${s.source}${s.env ? ` ${s.env}` : ''}`);
    else if (!o.hidden) out.push(`# ${settingKey(o)}:`);
  }
  return out.join('\n') + '\n';
}
