import { BeaconError, codeForHttpStatus, errors } from '@beacon/core';
import { describeFetchError } from '@beacon/client/http';
import { connect, type GlobalOptions } from './connection.js';

/** A pair as Consul's /v1/kv answers it. */
export interface ConsulPair {
  Key: string;
  Value: string | null;
  Flags: number;
  Session?: string;
  LockIndex: number;
  CreateIndex: number;
  ModifyIndex: number;
}

const TIMEOUT_MS = 10_000;

/**
 * The key/value store through the server's Consul-compatible /v1/kv (Beacon has no native KV
 * API). Values travel as raw bytes and Consul answers errors as plain text, so this speaks that
 * API itself rather than through the native client, and turns its answers into Beacon's errors.
 */
export function consulKv(opts: GlobalOptions) {
  const http = connect(opts);
  const path = (key: string) => `/v1/kv/${key.split('/').map(encodeURIComponent).join('/')}`;

  /** Tries each server in turn, as the native client does: the next one on a network error or a 5xx. */
  async function send(method: string, key: string, query: Record<string, string | undefined>, body?: Buffer): Promise<{ status: number; text: string }> {
    let last: BeaconError | undefined;
    for (const server of http.servers) {
      let res: Response;
      try {
        res = await http.fetch(http.url(server, path(key), query), { method, ...(body ? { body } : {}), signal: AbortSignal.timeout(TIMEOUT_MS) });
      } catch (err) {
        last = errors.unavailable(`${server}: ${describeFetchError(err, server)}`);
        continue;
      }
      const text = await res.text();
      if (res.status >= 500) {
        last = new BeaconError(codeForHttpStatus(res.status), `${server}: ${text.trim() || `HTTP ${res.status}`}`);
        continue;
      }
      return { status: res.status, text };
    }
    throw last ?? errors.unavailable('no server to ask');
  }

  const fail = (status: number, text: string, what: string): never => {
    throw new BeaconError(codeForHttpStatus(status), text.trim() || `${what}: HTTP ${status}`);
  };

  return {
    async get(key: string): Promise<ConsulPair> {
      const { status, text } = await send('GET', key, {});
      if (status === 404) throw errors.notFound(`key ${key} does not exist`);
      if (status !== 200) fail(status, text, key);
      return (JSON.parse(text) as ConsulPair[])[0]!;
    },
    async list(prefix: string): Promise<ConsulPair[]> {
      const { status, text } = await send('GET', prefix, { recurse: '' });
      if (status === 404) return [];
      if (status !== 200) fail(status, text, prefix);
      return JSON.parse(text) as ConsulPair[];
    },
    /** False when --cas refused the write. */
    async put(key: string, value: Buffer, o: { cas?: number; flags?: number }): Promise<boolean> {
      const { status, text } = await send('PUT', key, { cas: o.cas?.toString(), flags: o.flags?.toString() }, value);
      if (status !== 200) fail(status, text, key);
      return JSON.parse(text) === true;
    },
    /** False when --cas refused the delete. */
    async delete(key: string, o: { recurse?: boolean; cas?: number }): Promise<boolean> {
      const { status, text } = await send('DELETE', key, { recurse: o.recurse ? '' : undefined, cas: o.cas?.toString() });
      if (status !== 200) fail(status, text, key);
      return JSON.parse(text) === true;
    },
  };
}
