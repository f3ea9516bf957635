import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { BeaconError, isErrorCode, errors } from '@beacon/core';
import { describeFetchError } from '@beacon/client/http';
import { connect, type GlobalOptions } from '../connection.js';
import { print } from '../output.js';

/**
 * `beacon snapshot save|restore FILE`. The body is a file, not JSON, so these speak HTTP
 * themselves; they go to the first server of --server, since a snapshot is of one store.
 */
export function snapshotCommand(program: Command): void {
  const g = (cmd: Command): GlobalOptions => cmd.optsWithGlobals<GlobalOptions>();
  const snapshot = program.command('snapshot').description('save the catalog, KV and sessions to a file, or restore them from one');

  snapshot
    .command('save <file>')
    .description('write a consistent snapshot of the store to FILE (taken online, while writes go on)')
    .action(async (file: string, _o, cmd: Command) => {
      const { decodeSnapshot } = await import('@beacon/server');
      const body = Buffer.from(await (await call(g(cmd), 'GET', '/api/v1/snapshot')).arrayBuffer());
      // Checked before it replaces anything: a snapshot damaged on the way is no backup.
      const s = decodeSnapshot(body);
      // Through a temporary file, so FILE is never half written.
      const tmp = `${file}.${process.pid}.tmp`;
      try {
        await writeFile(tmp, body, { mode: 0o600 });
        await rename(tmp, file);
      } catch (err) {
        await rm(tmp, { force: true });
        throw errors.invalid(`cannot write ${file}: ${(err as Error).message}`);
      }
      const r = { file, revision: s.header.revision, keys: s.kvs.length, leases: s.leases.length, bytes: body.length };
      print(g(cmd), r, () => `saved ${r.keys} keys and ${r.leases} leases at revision ${r.revision} to ${file} (${r.bytes} bytes)\n`);
    });

  snapshot
    .command('restore <file>')
    .description('replace the catalog, KV and sessions with those in FILE (leased keys get a fresh lease of their TTL)')
    .action(async (file: string, _o, cmd: Command) => {
      const { decodeSnapshot } = await import('@beacon/server');
      let body: Buffer;
      try {
        body = await readFile(file);
      } catch (err) {
        throw errors.invalid(`cannot read ${file}: ${(err as Error).message}`);
      }
      // The server checks it again; checking here names the file and spares sending a bad one.
      decodeSnapshot(body);
      const r = (await (await call(g(cmd), 'PUT', '/api/v1/snapshot', body)).json()) as { index: number; keys: number; leases: number; revision: number };
      print(g(cmd), r, () => `restored ${r.keys} keys and ${r.leases} leases (snapshot revision ${r.revision}) from ${file}; the store is now at index ${r.index}\n`);
    });
}

async function call(opts: GlobalOptions, method: 'GET' | 'PUT', path: string, body?: Buffer): Promise<Response> {
  const http = connect(opts);
  const server = http.servers[0]!;
  let res: Response;
  try {
    res = await http.fetch(server + path, { method, ...(body ? { body, headers: { 'content-type': 'application/octet-stream' } } : {}) });
  } catch (err) {
    throw errors.unavailable(`${server}: ${describeFetchError(err, server)}`);
  }
  if (res.ok) return res;
  const text = await res.text();
  let e: { code?: unknown; message?: unknown } | undefined;
  try {
    e = (JSON.parse(text) as { error?: typeof e }).error;
  } catch {
    /* not a Beacon answer */
  }
  if (e && isErrorCode(e.code)) throw new BeaconError(e.code, String(e.message));
  throw errors.unavailable(`${server}: HTTP ${res.status} is not a Beacon answer; is ${server} a Beacon server?`);
}
