import { assertDatacenterName, errors, inAnswers, isServiceName, LIMITS, type Clock, type Instance, type Random } from '@beacon/core';
import { PrefixMirror } from '../compat/mirror.js';
import { uuid } from '../compat/uuid.js';
import { KEYS } from '../keys.js';
import type { Store } from '../store/types.js';
import { parseJson } from '../util/json.js';
import { answerWithFailover, type FailoverAnswer, type FailoverPolicy } from './failover.js';
import type { Federation } from './federation.js';

/** A prepared query as stored (Consul's `/v1/query` definition, the parts Beacon runs). */
export interface QueryRecord {
  name: string;
  service: string;
  failover: FailoverPolicy;
  onlyPassing: boolean;
  /** Every tag must be present; a `!tag` must be absent. */
  tags: string[];
  /** DNS answer TTL in seconds (Consul's `DNS.TTL`); the service TTL when absent. */
  dnsTtlS?: number;
  session?: string;
}

export interface PreparedQuery extends QueryRecord {
  id: string;
  createIndex: number;
  modifyIndex: number;
}

const MAX_QUERIES = 10_000;
const MAX_TAGS = 64;
/** A query name is one DNS label (`<name>.query.consul`). */
const QUERY_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

export interface PreparedQueriesOptions {
  store: Store;
  clock: Clock;
  random: Random;
  logger?: { warn(obj: unknown, msg?: string): void; error(obj: unknown, msg?: string): void };
}

/**
 * Prepared queries, stored in this DC's store (`/beacon/queries/<id>`) and mirrored in memory:
 * a service, tag and health filter, and a failover policy to other datacenters. Run by
 * `/v1/query/…/execute`, `<name>.query.<domain>` in DNS, and explained by `…/explain`.
 */
export class PreparedQueries {
  private readonly mirror: PrefixMirror<QueryRecord>;

  constructor(private readonly opts: PreparedQueriesOptions) {
    this.mirror = new PrefixMirror<QueryRecord>({
      store: opts.store,
      clock: opts.clock,
      prefix: KEYS.queries,
      parse: (kv) => parseJson<QueryRecord>(kv.value),
      ...(opts.logger ? { logger: opts.logger } : {}),
    });
  }

  start(): Promise<void> {
    return this.mirror.start();
  }

  close(): Promise<void> {
    return this.mirror.close();
  }

  get index(): number {
    return this.mirror.index;
  }

  list(): PreparedQuery[] {
    return this.mirror.list().map(toQuery);
  }

  get(id: string): PreparedQuery | undefined {
    const e = this.mirror.get(id);
    return e ? toQuery(e) : undefined;
  }

  /** By id, else by name (Consul's execute and explain take either). */
  resolve(idOrName: string): PreparedQuery | undefined {
    const byId = this.get(idOrName);
    if (byId) return byId;
    const lower = idOrName.toLowerCase();
    for (const e of this.mirror.all()) if (e.value.name === lower) return toQuery(e);
    return undefined;
  }

  async create(rec: QueryRecord): Promise<string> {
    this.assertValid(rec, undefined);
    if (this.mirror.size >= MAX_QUERIES) throw errors.tooMany(`at most ${MAX_QUERIES} prepared queries`);
    const id = uuid(this.opts.random);
    const rev = await this.opts.store.put(KEYS.query(id), JSON.stringify(rec));
    await this.mirror.waitForRevision(rev);
    return id;
  }

  async update(id: string, rec: QueryRecord): Promise<void> {
    if (!this.mirror.get(id)) throw errors.notFound(`Query not found: ${id}`);
    this.assertValid(rec, id);
    const rev = await this.opts.store.put(KEYS.query(id), JSON.stringify(rec));
    await this.mirror.waitForRevision(rev);
  }

  async delete(id: string): Promise<void> {
    if (!this.mirror.get(id)) throw errors.notFound(`Query not found: ${id}`);
    const res = await this.opts.store.txn({ compare: [], success: [{ type: 'delete', key: KEYS.query(id) }] });
    await this.mirror.waitForRevision(res.revision);
  }

  private assertValid(rec: QueryRecord, id: string | undefined): void {
    if (!isServiceName(rec.service)) throw errors.invalid(`Must provide a Service name to query (a DNS label), got ${JSON.stringify(rec.service)}`);
    if (rec.name !== '') {
      if (!QUERY_NAME.test(rec.name)) throw errors.invalid(`Query name ${JSON.stringify(rec.name)} must be a DNS label (a-z, 0-9, -)`);
      for (const e of this.mirror.all()) if (e.value.name === rec.name && e.name !== id) throw errors.invalid(`Name ${JSON.stringify(rec.name)} is already in use`);
    }
    if (rec.tags.length > MAX_TAGS) throw errors.invalid(`at most ${MAX_TAGS} tags`);
    for (const t of rec.tags) if (t === '' || t === '!' || t.length > LIMITS.tagLength + 1) throw errors.invalid(`invalid tag ${JSON.stringify(t.slice(0, 40))}`);
    if (rec.failover.datacenters.length > MAX_TAGS) throw errors.invalid(`at most ${MAX_TAGS} failover datacenters`);
    for (const dc of rec.failover.datacenters) assertDatacenterName(dc);
    if (rec.session !== undefined && rec.session.length > 64) throw errors.invalid('Session must be a session id');
  }
}

/**
 * Runs a query: its service's instances that pass its filter, from the local DC or, when none is
 * left there, from the first DC its failover finds with some.
 */
export function executeQuery(fed: Federation, q: QueryRecord): FailoverAnswer {
  const want = q.tags.filter((t) => !t.startsWith('!')).map((t) => t.toLowerCase());
  const not = q.tags.filter((t) => t.startsWith('!')).map((t) => t.slice(1).toLowerCase());
  const pick = (insts: readonly Instance[]) =>
    insts.filter((i) => {
      if (!inAnswers(i, q.onlyPassing)) return false;
      const tags = i.tags.map((t) => t.toLowerCase());
      return want.every((t) => tags.includes(t)) && !not.some((t) => tags.includes(t));
    });
  return answerWithFailover(fed, q.service, q.failover.nearest > 0 || q.failover.datacenters.length > 0 ? q.failover : undefined, pick);
}

function toQuery(e: { name: string; value: QueryRecord; createIndex: number; modifyIndex: number }): PreparedQuery {
  return { ...e.value, id: e.name, createIndex: e.createIndex, modifyIndex: e.modifyIndex };
}
