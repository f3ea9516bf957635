import { rootCertificates } from 'node:tls';
import { ConsecutiveBreaker, ExponentialBackoff, circuitBreaker, handleWhen, noop } from 'cockatiel';
import { isRecoverableError, type Etcd3, type IOptions, type ICompare, type IKeyValue, type IRequestOp, type ITxnResponse } from 'etcd3';
import { errors, isBeaconError, systemRandom, type Clock, type Random } from '@beacon/core';
import { TxnBatcher, batchable, type BatchOutcome } from './etcd-batch.js';
import { etcdClient } from './etcd-client.js';
import { isTransient, toBeaconError } from './etcd-errors.js';
import { KeepAliveLanes } from './etcd-keepalive.js';
import { EtcdWatch } from './etcd-watch.js';
import { WatchPool } from './etcd-watch-pool.js';
import { isWellFormedText } from './prefix.js';
import { checkKey, checkLeaseId, checkPrefix, checkRestore, checkTxn } from './validate.js';
import type {
  Compare,
  KeyValue,
  LeaseId,
  LeaseInfo,
  Op,
  OpResult,
  RangeResponse,
  RestoreRequest,
  Store,
  StoreKind,
  TxnRequest,
  TxnResponse,
  WatchBatch,
  WatchOptions,
} from './types.js';

export interface EtcdStoreOptions {
  /** `host:port` (or `http://host:port`) of the etcd members. */
  endpoints: string[];
  /** Real time: it also computes gRPC deadlines, so a manual clock does not fit here. */
  clock: Clock;
  /** Lease ids are chosen here (see {@link EtcdStore.grantLease}). Default: the system's. */
  random?: Random;
  /** Prepended to every key: several Beacon clusters (or tests) can share one etcd. Default ''. */
  prefix?: string;
  /** Deadline of each unary call (get, range, txn, lease calls) and of each keep-alive. Default 1500 ms. */
  callDeadlineMs?: number;
  /**
   * Retry budget, in call deadlines: a call that fails transiently (timeout, member down, no
   * leader) is tried again, each time on a member picked afresh and after a growing pause, until
   * this many deadlines have passed since it started. Default 3 (4.5 s with the default deadline).
   */
  attempts?: number;
  /**
   * Group commit: write transactions submitted in one event-loop turn go to etcd as one
   * transaction (see {@link TxnBatcher}). Default true.
   */
  batchWrites?: boolean;
  /** Parallel lease keep-alive streams. Default 4. */
  keepAliveStreams?: number;
  /** How long a watch may stay disconnected before it fails with `unavailable`. Default 3000 ms. */
  watchGraceMs?: number;
  /** How long `openEtcdStore` keeps trying to reach etcd (servers often start with it). Default 10 s. */
  connectTimeoutMs?: number;
  /**
   * A watch not confirmed current for this long tells its reader it is behind (`onBehind`); a
   * member that has not answered for twice this long loses the watches to the next member.
   * Default 1000 ms.
   */
  maxLagMs?: number;
  /** `etcds://`: TLS to etcd, trusting `ca` (else the system's CAs), with a client certificate when etcd verifies clients (PEM contents). */
  tls?: { ca?: string | Buffer; cert?: string | Buffer; key?: string | Buffer };
  /** etcd's own users (`etcdctl auth enable`). */
  auth?: { username: string; password: string };
}

/** etcd rounds lease TTLs to whole seconds and refuses less than 1.5 × its election timeout (2 s by default). */
export const ETCD_MIN_TTL_MS = 2000;
const LIST_PAGE = 1000;
const MAX_QUEUED_BATCHES = 100_000;
const MAX_LEASE_ID = 2 ** 53 - 1;

/** gRPC's TLS credentials; without a CA, the system's trusted CAs (gRPC needs them spelled out). */
function etcdCredentials(t: NonNullable<EtcdStoreOptions['tls']>): NonNullable<IOptions['credentials']> {
  const pem = (v: string | Buffer) => (typeof v === 'string' ? Buffer.from(v) : v);
  return {
    rootCertificate: t.ca !== undefined ? pem(t.ca) : Buffer.from(rootCertificates.join('\n')),
    ...(t.cert !== undefined && t.key !== undefined ? { certChain: pem(t.cert), privateKey: pem(t.key) } : {}),
  };
}

export async function openEtcdStore(opts: EtcdStoreOptions): Promise<EtcdStore> {
  const store = new EtcdStore(opts);
  // Fail early and clearly when no member answers, rather than at the first request; but give
  // a cluster that is starting alongside this server a moment.
  const waitMs = opts.connectTimeoutMs ?? 10_000;
  const deadline = opts.clock.now() + waitMs;
  // The clock's timers and gRPC's reconnect timers are unref'd: with nothing else to do yet, the
  // process would exit in the middle of this wait, silently and with status 0. Hold it open.
  const hold = setInterval(() => undefined, 60_000);
  try {
    // Once the client's per-member breakers open, or a last short attempt times out, failures no
    // longer say why: keep the connection error when there was one.
    let cause = '';
    for (;;) {
      const left = deadline - opts.clock.now();
      try {
        await store.revisionOnce(Math.max(1, Math.min(left, store.callDeadlineMs)));
        return store;
      } catch (err) {
        const message = (err as Error).message;
        const connectError = /Last error: (?:\w*Error: )?(.*?)\.?(?: Resolution note:.*)?$/s.exec(message)?.[1];
        if (connectError) cause = connectError;
        else if (!cause) cause = message;
        if (opts.clock.now() >= deadline || !isBeaconError(err) || err.code !== 'unavailable') {
          await store.close();
          throw errors.unavailable(
            `cannot reach etcd at ${opts.endpoints.join(',')} within ${formatWait(waitMs)} (${cause}): ` +
              'check that etcd is running and that --store lists its client URLs (etcd --advertise-client-urls)',
          );
        }
        await new Promise<void>((r) => opts.clock.setTimeout(r, Math.min(500, Math.max(0, deadline - opts.clock.now()))));
      }
    }
  } finally {
    clearInterval(hold);
  }
}

function formatWait(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}

/**
 * The clustered Store: etcd v3 through the `etcd3` client.
 *
 * - Revisions, leases and watches are etcd's own; keys are namespaced by `prefix`.
 * - Every unary call carries a deadline (a call stuck on a member that lost its leader would
 *   otherwise wait out etcd's 5 s request timeout plus an election) and is retried here, not by
 *   the client, on another member: a write retried after a timeout may already have been applied,
 *   so a transaction that then fails its compares is read back, and reported as succeeded when its
 *   writes are in place (the create-if-absent case).
 * - Lease ids are picked at random below 2^53 and passed to etcd: etcd's own are 64-bit and do
 *   not fit a JavaScript number, and a known id makes a retried grant recognisable.
 * - A keep-alive is one LeaseKeepAlive request: heartbeats reach any server and each renews the
 *   instance's own etcd lease, so no server holds leases on an instance's behalf.
 */
/** Below etcd's defaults (128 ops, 1.5 MiB a request), leaving room for the request's own framing. */
const RESTORE_OPS_PER_TXN = 128;
const RESTORE_BYTES_PER_TXN = 1024 * 1024;

export class EtcdStore implements Store {
  readonly kind: StoreKind = 'etcd';

  private readonly client: Etcd3;
  private readonly prefix: string;
  private readonly prefixBytes: Buffer;
  /** Deadline of each unary call. */
  readonly callDeadlineMs: number;
  private readonly attempts: number;
  private readonly random: Random;
  private readonly keepAlives: KeepAliveLanes;
  private readonly watchPool: WatchPool;
  private readonly watches = new Set<EtcdWatch>();
  private readonly batcher: TxnBatcher | undefined;
  private closed = false;

  constructor(private readonly opts: EtcdStoreOptions) {
    if (!Array.isArray(opts.endpoints) || opts.endpoints.length === 0) throw errors.invalid('the etcd store needs at least one endpoint');
    this.prefix = opts.prefix ?? '';
    if (!isWellFormedText(this.prefix)) throw errors.invalid('the etcd key prefix must be well-formed Unicode');
    this.prefixBytes = Buffer.from(this.prefix, 'utf8');
    this.callDeadlineMs = opts.callDeadlineMs ?? 1500;
    this.attempts = Math.max(1, opts.attempts ?? 3);
    this.random = opts.random ?? systemRandom;
    const clock = opts.clock;
    const scheme = opts.tls ? 'https' : 'http';
    const hosts = opts.endpoints.map((e) => (/^https?:\/\//.test(e) ? e : `${scheme}://${e}`));
    const options = (members: string[]): IOptions => ({
      hosts: members,
      ...(opts.tls ? { credentials: etcdCredentials(opts.tls) } : {}),
      ...(opts.auth ? { auth: { username: opts.auth.username, password: opts.auth.password } } : {}),
      // Never a deadline on the watch and keep-alive streams: it would end them.
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: clock.now() + this.callDeadlineMs }),
      faultHandling: {
        // Retries happen in `call`, where an ambiguous write can be read back.
        global: noop,
        // A member that failed three calls in a row is skipped for a second (the client's default
        // is 5 s: a server waiting for etcd at start went on failing 5 s after etcd was up).
        host: () => circuitBreaker(handleWhen(isRecoverableError), { halfOpenAfter: 1000, breaker: new ConsecutiveBreaker(3) }),
        watchBackoff: new ExponentialBackoff({ initialDelay: 100, maxDelay: 2000 }).next(),
      },
      grpcOptions: {
        'grpc.max_receive_message_length': 64 * 1024 * 1024,
        // Notices a member that vanished without closing the connection (a partition, a dead host).
        'grpc.keepalive_time_ms': 10_000,
        'grpc.keepalive_timeout_ms': 5_000,
        // Back within a couple of seconds of etcd returning, not after gRPC's backoff of up to 2 minutes.
        'grpc.initial_reconnect_backoff_ms': 100,
        'grpc.max_reconnect_backoff_ms': 2_000,
      },
    });
    this.client = etcdClient(options(hosts));
    this.watchPool = new WatchPool({
      hosts,
      connect: (host) => etcdClient(options([host])),
      clock,
      random: this.random,
      maxLagMs: opts.maxLagMs ?? 1000,
      clusterRevision: (deadlineMs) => this.revisionOnce(deadlineMs),
      probeKey: this.revisionKey(),
    });
    this.keepAlives = new KeepAliveLanes(this.client.leaseClient, clock, this.callDeadlineMs, opts.keepAliveStreams ?? 4);
    this.batcher =
      opts.batchWrites === false
        ? undefined
        : new TxnBatcher({ sendBatch: (reqs) => this.sendBatch(reqs), single: (req, ambiguous) => this.single(req, ambiguous), isTransient });
  }

  // ---- reads --------------------------------------------------------------------------------

  async get(key: string): Promise<KeyValue | undefined> {
    checkKey(key);
    const res = await this.call('get', () => this.client.kv.range({ key: this.encode(key) }));
    const kv = res.kvs[0];
    return kv ? this.decode(kv) : undefined;
  }

  /** Lists in pages, all read at the revision of the first, so a large catalog is one consistent snapshot. */
  async range(prefix: string): Promise<RangeResponse> {
    checkPrefix(prefix);
    const [start, end] = this.span(prefix);
    const kvs: KeyValue[] = [];
    let from = start;
    let revision = 0;
    for (;;) {
      const page = await this.call('range', () =>
        this.client.kv.range({ key: from, range_end: end, limit: LIST_PAGE, ...(revision ? { revision } : {}) }),
      );
      if (!revision) revision = Number(page.header.revision);
      for (const raw of page.kvs) {
        const kv = this.decode(raw);
        if (kv) kvs.push(kv);
      }
      const last = page.kvs[page.kvs.length - 1];
      if (!page.more || !last) break;
      from = Buffer.concat([last.key, Buffer.from([0])]);
    }
    return { kvs, revision };
  }

  async currentRevision(): Promise<number> {
    return this.call('revision', () => this.readRevision(this.callDeadlineMs));
  }

  /**
   * The cluster's current revision from one attempt on one member, within `deadlineMs`: a
   * linearizable read, so no member that is behind (or cut off) can answer it.
   */
  async revisionOnce(deadlineMs: number): Promise<number> {
    this.assertOpen();
    try {
      return await this.readRevision(deadlineMs);
    } catch (err) {
      throw toBeaconError(err, 'revision');
    }
  }

  private async readRevision(deadlineMs: number): Promise<number> {
    const res = await this.client.kv.range({ key: this.revisionKey(), count_only: true }, { deadline: this.opts.clock.now() + deadlineMs });
    return Number(res.header.revision);
  }

  /** A key to count: a read of it is cheap, and its header carries the revision. */
  private revisionKey(): Buffer {
    return this.prefixBytes.length ? this.prefixBytes : Buffer.from([0]);
  }

  /** `host:port` of the member this server's watches stream from. */
  get watchEndpoint(): string {
    return this.watchPool.endpoint;
  }

  // ---- writes -------------------------------------------------------------------------------

  async put(key: string, value: string, opts?: { lease?: LeaseId }): Promise<number> {
    const res = await this.txn({ compare: [], success: [{ type: 'put', key, value, ...(opts?.lease ? { lease: opts.lease } : {}) }] });
    return res.revision;
  }

  async delete(key: string): Promise<number> {
    const res = await this.txn({ compare: [], success: [{ type: 'delete', key }] });
    return res.revision;
  }

  async txn(req: TxnRequest): Promise<TxnResponse> {
    checkTxn(req);
    this.assertOpen();
    return this.batcher && batchable(req) ? this.batcher.submit(req) : this.single(req, false);
  }

  /** One transaction with retries; `ambiguous`: an earlier attempt (e.g. a batch that timed out) may have applied it. */
  private async single(req: TxnRequest, ambiguous: boolean): Promise<TxnResponse> {
    const compare = req.compare.map((c) => this.toCompare(c));
    const success = req.success.map((op) => this.toOp(op));
    const failure = (req.failure ?? []).map((op) => this.toOp(op));
    const failureWrites = (req.failure ?? []).some((op) => op.type !== 'get');
    const writes = req.success.some((op) => op.type !== 'get');
    const started = this.opts.clock.now();
    for (let attempt = 0; ; attempt++) {
      this.assertOpen();
      // After an attempt that may have been applied, a retry must not run the failure branch's
      // writes: if the first attempt did apply, those writes would land on top of it.
      const guarded = ambiguous && failureWrites;
      let res: ITxnResponse;
      try {
        res = await this.client.kv.txn({ compare, success, failure: guarded ? [] : failure });
      } catch (err) {
        if (!isTransient(err) || !(await this.retryAfter(started, attempt))) throw toBeaconError(err, 'txn');
        ambiguous ||= writes;
        continue;
      }
      if (res.succeeded) return this.fromTxn(res, req.success);
      if (ambiguous) {
        const earlier = await this.readBack(req.success);
        if (earlier) return earlier;
        // Not applied: the compares failed on their own merits. Run the real failure branch.
        if (guarded) {
          ambiguous = false;
          continue;
        }
      }
      return this.fromTxn(res, req.failure ?? []);
    }
  }

  /** Several requests as one transaction, one attempt; when it fails, its failure branch reads the compared keys. */
  private async sendBatch(reqs: TxnRequest[]): Promise<BatchOutcome> {
    this.assertOpen();
    const keys = [...new Set(reqs.flatMap((r) => r.compare.map((c) => c.key)))];
    const res = await this.client.kv.txn({
      compare: reqs.flatMap((r) => r.compare.map((c) => this.toCompare(c))),
      success: reqs.flatMap((r) => r.success.map((op) => this.toOp(op))),
      failure: keys.map((key) => ({ request_range: { key: this.encode(key) } })),
    });
    const revision = Number(res.header.revision);
    if (res.succeeded) {
      let at = 0;
      const results = reqs.map((r) => {
        const mine = this.results(res.responses.slice(at, at + r.success.length), r.success);
        at += r.success.length;
        return mine;
      });
      return { applied: true, revision, results };
    }
    const current = new Map<string, KeyValue | undefined>();
    keys.forEach((key, i) => {
      const raw = res.responses[i]?.response_range?.kvs?.[0];
      current.set(key, raw ? this.decode(raw) : undefined);
    });
    return { applied: false, revision, current };
  }

  /**
   * etcd caps a txn at 128 operations (`--max-txn-ops`) and a request at 1.5 MiB, so a restore is
   * written in chunks: puts first (the catalog never empties on the way), then the deletes. A
   * reader can see a mix until the last chunk lands, and a failure midway leaves one; restoring
   * the same file again completes it.
   */
  async restore(req: RestoreRequest): Promise<number> {
    checkRestore(req, { maxTtlMs: Number.MAX_SAFE_INTEGER });
    const fresh = new Map<LeaseId, LeaseId>();
    for (const l of req.leases) fresh.set(l.id, await this.grantLease(l.ttlMs));
    const current = await this.range(req.prefix);
    const restored = new Set(req.kvs.map((kv) => kv.key));
    const ops: Op[] = req.kvs.map((kv) => ({ type: 'put', key: kv.key, value: kv.value, ...(kv.lease ? { lease: fresh.get(kv.lease)! } : {}) }));
    for (const kv of current.kvs) {
      if (!restored.has(kv.key) && !req.keep.some((k) => kv.key.startsWith(k))) ops.push({ type: 'delete', key: kv.key });
    }
    let revision = current.revision;
    let chunk: Op[] = [];
    let bytes = 0;
    const send = async () => {
      if (chunk.length > 0) revision = (await this.txn({ compare: [], success: chunk })).revision;
      chunk = [];
      bytes = 0;
    };
    for (const op of ops) {
      const size = op.type === 'put' ? Buffer.byteLength(op.key) + Buffer.byteLength(op.value) : op.type === 'delete' ? Buffer.byteLength(op.key) : 0;
      if (chunk.length === RESTORE_OPS_PER_TXN || (chunk.length > 0 && bytes + size > RESTORE_BYTES_PER_TXN)) await send();
      chunk.push(op);
      bytes += size;
    }
    await send();
    // A lease left holding nothing belonged to the state the restore replaced: it goes with it,
    // rather than lapse later as if its holder had stopped renewing.
    for (const id of new Set(current.kvs.map((kv) => kv.lease))) {
      if (id === 0) continue;
      const res = await this.call('lease info', () => this.client.leaseClient.leaseTimeToLive({ ID: id, keys: true }));
      if (Number(res.TTL) < 0 || (res.keys ?? []).length > 0) continue;
      await this.revokeLease(id).catch((err: unknown) => {
        if (!(isBeaconError(err) && err.code === 'not_found')) throw err;
      });
    }
    return revision;
  }

  // ---- leases -------------------------------------------------------------------------------

  /**
   * Grants an etcd lease. etcd counts TTLs in whole seconds: the TTL is rounded up to the next
   * second, and etcd raises anything below its minimum (1.5 × election timeout, 2 s with the
   * default 1 s) to that minimum; `leaseInfo` reports the TTL actually granted.
   */
  async grantLease(ttlMs: number): Promise<LeaseId> {
    if (!Number.isSafeInteger(ttlMs) || ttlMs < 1) throw errors.invalid(`lease TTL must be a positive whole number of milliseconds, got ${ttlMs}`);
    const ttl = Math.ceil(ttlMs / 1000);
    for (let tries = 0; tries < 3; tries++) {
      const id = this.newLeaseId();
      let sent = false;
      try {
        await this.call('lease grant', () => {
          const first = !sent;
          sent = true;
          return this.client.leaseClient.leaseGrant({ ID: id, TTL: ttl }).catch((err: unknown) => {
            // Our own earlier attempt got through before it timed out.
            if (!first && String((err as Error).message).includes('lease already exists')) return undefined;
            throw err;
          });
        });
        return id;
      } catch (err) {
        // A random id collided with a live lease: draw another.
        if (String((err as Error).message).includes('lease already exists')) continue;
        throw err;
      }
    }
    throw errors.unavailable('could not find a free lease id');
  }

  async keepAlive(id: LeaseId): Promise<LeaseInfo> {
    checkLeaseId(id);
    const ttl = await this.call('lease keep-alive', () => this.keepAlives.renew(id));
    if (!(ttl > 0)) throw errors.notFound(`lease ${id} does not exist or has expired`);
    return { id, ttlMs: ttl * 1000, remainingMs: ttl * 1000 };
  }

  async revokeLease(id: LeaseId): Promise<void> {
    checkLeaseId(id);
    let attempts = 0;
    await this.call('lease revoke', () => {
      attempts++;
      return this.client.leaseClient.leaseRevoke({ ID: id }).catch((err: unknown) => {
        // Gone on a retry: the attempt that timed out revoked it.
        if (attempts > 1 && toBeaconError(err, 'revoke').code === 'not_found') return undefined;
        throw err;
      });
    });
  }

  async leaseInfo(id: LeaseId): Promise<LeaseInfo | undefined> {
    checkLeaseId(id);
    const res = await this.call('lease info', () => this.client.leaseClient.leaseTimeToLive({ ID: id }));
    const remaining = Number(res.TTL);
    if (remaining < 0) throw errors.notFound(`lease ${id} does not exist or has expired`);
    return { id, ttlMs: Number(res.grantedTTL) * 1000, remainingMs: remaining * 1000 };
  }

  // ---- watch --------------------------------------------------------------------------------

  watch(prefix: string, opts: WatchOptions): AsyncIterable<WatchBatch> {
    checkPrefix(prefix);
    if (this.closed) return failing(errors.unavailable('the store is closed'));
    const [start, end] = this.span(prefix);
    return new EtcdWatch(
      {
        pool: this.watchPool,
        clock: this.opts.clock,
        start,
        end,
        decode: (kv) => this.decode(kv),
        isCompacted: (revision) => this.isCompacted(start, revision),
        graceMs: this.opts.watchGraceMs ?? 3000,
        maxQueued: MAX_QUEUED_BATCHES,
        maxLagMs: this.opts.maxLagMs ?? 1000,
        register: (w) => this.watches.add(w),
        unregister: (w) => this.watches.delete(w),
      },
      opts,
    );
  }

  /** Compacts etcd's history below `revision` (tests, operators); watches from below fail with `compacted`. */
  async compact(revision: number): Promise<void> {
    await this.call('compact', () => this.client.kv.compact({ revision, physical: true }));
  }

  /** One attempt, no retries: a scrape during an outage must answer, not wait out the retry budget. */
  async sizeBytes(): Promise<number> {
    this.assertOpen();
    try {
      return Number((await this.client.maintenance.status()).dbSize);
    } catch (err) {
      throw toBeaconError(err, 'status');
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // The client's close() leaves watchers running: cancel them first.
    await Promise.all([...this.watches].map((w) => w.stop()));
    this.watchPool.close();
    this.keepAlives.close();
    this.client.close();
  }

  // ---- internals ----------------------------------------------------------------------------

  /** Runs a call with retries on transient failures, each attempt on a member picked afresh. */
  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    const started = this.opts.clock.now();
    for (let attempt = 0; ; attempt++) {
      this.assertOpen();
      try {
        return await fn();
      } catch (err) {
        if (!isTransient(err) || !(await this.retryAfter(started, attempt))) throw toBeaconError(err, what);
      }
    }
  }

  /**
   * After a transient failure: false once the retry budget is spent (or the store closed), else
   * true after a pause. Failures on a dead member are immediate, so the budget is in time, not
   * in attempts: a few quick retries must not use it up before an election is over.
   */
  private async retryAfter(started: number, attempt: number): Promise<boolean> {
    if (this.closed || this.opts.clock.now() - started >= this.callDeadlineMs * this.attempts) return false;
    await new Promise<void>((resolve) => this.opts.clock.setTimeout(resolve, Math.min(25 * 2 ** attempt, 400)));
    return !this.closed;
  }

  /**
   * After a write that may have been applied and a retry whose compares failed: are the write's
   * effects in place? Then the first attempt did it (results of write ops are not known then).
   */
  private async readBack(ops: Op[]): Promise<TxnResponse | undefined> {
    if (!ops.some((op) => op.type === 'put')) return undefined;
    const reads: IRequestOp[] = ops.map((op) => {
      if (op.type === 'deletePrefix') {
        const [key, range_end] = this.span(op.prefix);
        return { request_range: { key, range_end, limit: 1 } };
      }
      return { request_range: { key: this.encode(op.key) } };
    });
    const res = await this.call('txn read-back', () => this.client.kv.txn({ compare: [], success: reads, failure: [] }));
    let revision = 0;
    const results: OpResult[] = [];
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i]!;
      const raw = res.responses[i]?.response_range?.kvs ?? [];
      const kv = raw[0] ? this.decode(raw[0]) : undefined;
      switch (op.type) {
        case 'put':
          if (!kv || kv.value !== op.value || kv.lease !== (op.lease ?? 0)) return undefined;
          revision = Math.max(revision, kv.modRevision);
          results.push({});
          break;
        case 'delete':
        case 'deletePrefix':
          if (kv) return undefined;
          results.push({});
          break;
        case 'get':
          results.push(kv ? { kv } : {});
          break;
      }
    }
    return { succeeded: true, revision, results };
  }

  private async isCompacted(key: Buffer, revision: number): Promise<boolean> {
    try {
      await this.call('compaction probe', () => this.client.kv.range({ key, revision, limit: 1, keys_only: true }));
      return false;
    } catch (err) {
      if (isBeaconError(err) && err.code === 'compacted') return true;
      // A revision in the future is not compacted; anything else is not known, so not claimed.
      return false;
    }
  }

  private fromTxn(res: ITxnResponse, ops: Op[]): TxnResponse {
    return { succeeded: res.succeeded, revision: Number(res.header.revision), results: this.results(res.responses, ops) };
  }

  private results(responses: ITxnResponse['responses'], ops: Op[]): OpResult[] {
    return ops.map((op, i) => {
      const r = responses[i];
      switch (op.type) {
        case 'get': {
          const raw = r?.response_range?.kvs?.[0];
          const kv = raw ? this.decode(raw) : undefined;
          return kv ? { kv } : {};
        }
        case 'put': {
          const raw = r?.response_put?.prev_kv;
          const kv = raw ? this.decode(raw) : undefined;
          return kv ? { kv } : {};
        }
        case 'delete':
        case 'deletePrefix':
          return { deleted: Number(r?.response_delete_range?.deleted ?? 0) };
      }
    });
  }

  private toCompare(c: Compare): ICompare {
    const key = this.encode(c.key);
    switch (c.target) {
      case 'exists':
        // An absent key has create_revision 0.
        return { key, target: 'Create', result: c.value ? 'Greater' : 'Equal', create_revision: 0 };
      case 'value':
        return { key, target: 'Value', result: c.op === 'equal' ? 'Equal' : 'NotEqual', value: Buffer.from(c.value, 'utf8') };
      case 'version':
        return { key, target: 'Version', result: RESULT[c.op], version: c.value };
      case 'createRevision':
        return { key, target: 'Create', result: RESULT[c.op], create_revision: c.value };
      case 'modRevision':
        return { key, target: 'Mod', result: RESULT[c.op], mod_revision: c.value };
    }
  }

  private toOp(op: Op): IRequestOp {
    switch (op.type) {
      case 'get':
        return { request_range: { key: this.encode(op.key) } };
      case 'put':
        return { request_put: { key: this.encode(op.key), value: Buffer.from(op.value, 'utf8'), lease: op.lease ?? 0, prev_kv: true } };
      case 'delete':
        return { request_delete_range: { key: this.encode(op.key) } };
      case 'deletePrefix': {
        const [key, range_end] = this.span(op.prefix);
        return { request_delete_range: { key, range_end } };
      }
    }
  }

  private encode(key: string): Buffer {
    return Buffer.from(this.prefix + key, 'utf8');
  }

  /** The byte range of every key starting with `prefix` (inside the namespace). */
  private span(prefix: string): [Buffer, Buffer] {
    const start = this.encode(prefix);
    return [start, start.length === 0 ? Buffer.from([0]) : prefixEndBytes(start)];
  }

  private decode(raw: IKeyValue): KeyValue | undefined {
    const full = raw.key.toString('utf8');
    if (!full.startsWith(this.prefix)) return undefined;
    return {
      key: full.slice(this.prefix.length),
      value: raw.value ? raw.value.toString('utf8') : '',
      createRevision: Number(raw.create_revision),
      modRevision: Number(raw.mod_revision),
      version: Number(raw.version),
      lease: Number(raw.lease),
    };
  }

  private newLeaseId(): number {
    // 53 random bits from two draws (one double carries fewer).
    const hi = Math.floor(this.random.next() * 2 ** 21);
    const lo = Math.floor(this.random.next() * 2 ** 32);
    return Math.min(MAX_LEASE_ID, hi * 2 ** 32 + lo) || 1;
  }

  private assertOpen(): void {
    if (this.closed) throw errors.unavailable('the store is closed');
  }
}

const RESULT = { equal: 'Equal', notEqual: 'NotEqual', less: 'Less', greater: 'Greater' } as const;

/** The first key after every key that starts with `prefix`, byte-wise; `\0` (no end) for a prefix of 0xff bytes. */
function prefixEndBytes(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]!++;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}

function failing(err: unknown): AsyncIterable<WatchBatch> {
  return {
    [Symbol.asyncIterator]: () => ({ next: () => Promise.reject(err) }),
  };
}

// ---- request checks (clear errors before anything is sent; etcd checks duplicates itself) ----

