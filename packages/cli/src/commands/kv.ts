import type { Command } from 'commander';
import { errors } from '@beacon/core';
import type { GlobalOptions } from '../connection.js';
import { integer, readValue } from '../flags.js';
import { consulKv, type ConsulPair } from '../kv-client.js';
import { print, printList, type Column } from '../output.js';

/** A pair as `beacon kv` prints it: the value as text when it is UTF-8, base64 otherwise. */
interface Pair {
  key: string;
  value: string | null;
  valueBase64?: string;
  flags: number;
  session?: string;
  lockIndex: number;
  createIndex: number;
  modifyIndex: number;
}

function toPair(p: ConsulPair): Pair {
  const bytes = p.Value === null ? null : Buffer.from(p.Value, 'base64');
  const text = bytes?.toString('utf8');
  // Decoding must round-trip: bytes that are not UTF-8 would otherwise print as replacement characters.
  const isText = bytes !== null && Buffer.from(text!, 'utf8').equals(bytes);
  return {
    key: p.Key,
    value: isText ? text! : null,
    ...(bytes !== null && !isText ? { valueBase64: p.Value! } : {}),
    flags: p.Flags,
    ...(p.Session ? { session: p.Session } : {}),
    lockIndex: p.LockIndex,
    createIndex: p.CreateIndex,
    modifyIndex: p.ModifyIndex,
  };
}

const shown = (p: Pair) => (p.value !== null ? p.value.split('\n')[0]!.slice(0, 60) : p.valueBase64 !== undefined ? `(${Buffer.from(p.valueBase64, 'base64').length} bytes, not text)` : '-');

const PAIR_COLUMNS: Column<Pair>[] = [
  { header: 'key', value: (p) => p.key },
  { header: 'modify-index', value: (p) => p.modifyIndex },
  { header: 'create-index', value: (p) => p.createIndex, wide: true },
  { header: 'flags', value: (p) => p.flags, wide: true },
  { header: 'session', value: (p) => p.session ?? '-', wide: true },
  { header: 'value', value: shown },
];

/** `beacon kv …`: the key/value store, through the server's Consul-compatible /v1/kv API. */
export function kvCommand(program: Command): void {
  const g = (cmd: Command): GlobalOptions => cmd.optsWithGlobals<GlobalOptions>();
  const kv = program.command('kv').description('read and write the key/value store');
  const casIndex = integer(0, Number.MAX_SAFE_INTEGER);

  const list = async (prefix: string, cmd: Command) => {
    const pairs = (await consulKv(g(cmd)).list(prefix)).map(toPair);
    printList(g(cmd), pairs, pairs, PAIR_COLUMNS, `no keys under ${JSON.stringify(prefix)}\n`);
  };

  kv.command('get <key>')
    .description("print a key's value (with --recurse, list the keys under a prefix)")
    .option('-r, --recurse', 'treat <key> as a prefix and list every pair under it')
    .action(async (key: string, o: { recurse?: boolean }, cmd: Command) => {
      if (o.recurse) return list(key, cmd);
      const pair = toPair(await consulKv(g(cmd)).get(key));
      // For people the value itself, byte for byte, as `consul kv get` prints it.
      print(g(cmd), pair, () => (pair.valueBase64 !== undefined ? Buffer.from(pair.valueBase64, 'base64') : pair.value === null || pair.value.endsWith('\n') ? (pair.value ?? '') : pair.value + '\n'));
    });

  kv.command('list [prefix]')
    .alias('ls')
    .description('list the pairs under a prefix (all of them without one)')
    .action(async (prefix: string | undefined, _o, cmd: Command) => list(prefix ?? '', cmd));

  kv.command('put <key> <value>')
    .description('write a value: the argument itself, @FILE for a file, - for standard input')
    .option('--cas <index>', 'only if the key is still at this modify index (0: only if it does not exist)', casIndex)
    .option('--flags <n>', 'opaque flags stored with the value', integer(0, Number.MAX_SAFE_INTEGER))
    .action(async (key: string, value: string, o: { cas?: number; flags?: number }, cmd: Command) => {
      const bytes = readValue(value);
      const written = await consulKv(g(cmd)).put(key, bytes, o);
      if (!written) throw errors.precondition(casRefusal(key, o.cas!));
      print(g(cmd), { key, written: true, bytes: bytes.length }, () => `wrote ${key} (${bytes.length} bytes)\n`);
    });

  kv.command('delete <key>')
    .alias('rm')
    .description('delete a key (with --recurse, every key under a prefix)')
    .option('-r, --recurse', 'treat <key> as a prefix and delete every key under it')
    .option('--cas <index>', 'only if the key is still at this modify index', casIndex)
    .action(async (key: string, o: { recurse?: boolean; cas?: number }, cmd: Command) => {
      if (o.recurse && o.cas !== undefined) throw errors.invalid('--cas applies to one key; it cannot be used with --recurse');
      const deleted = await consulKv(g(cmd)).delete(key, o);
      if (!deleted) throw errors.precondition(casRefusal(key, o.cas!));
      print(g(cmd), { key, deleted: true, recurse: !!o.recurse }, () => (o.recurse ? `deleted every key under ${JSON.stringify(key)}\n` : `deleted ${key}\n`));
    });
}

function casRefusal(key: string, cas: number): string {
  return cas === 0 ? `${key} already exists (--cas 0 writes only a new key)` : `${key} is no longer at modify index ${cas}; read it again (beacon kv get ${key} -o json) and retry`;
}
