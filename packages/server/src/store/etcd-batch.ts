import { holds } from './compare.js';
import type { KeyValue, OpResult, TxnRequest, TxnResponse } from './types.js';

/** What one combined transaction came to. */
export type BatchOutcome =
  | { applied: true; revision: number; results: OpResult[][] }
  | { applied: false; revision: number; current: Map<string, KeyValue | undefined> };

/** How the batcher reaches etcd (the etcd store). */
export interface BatchSender {
  /**
   * Sends every request's compares and writes as one transaction, one attempt. When a compare
   * fails, nothing is applied and the outcome carries the compared keys as they are.
   */
  sendBatch(reqs: TxnRequest[]): Promise<BatchOutcome>;
  /** Sends one request on its own, with retries; `ambiguous`: an earlier attempt may have applied it. */
  single(req: TxnRequest, ambiguous: boolean): Promise<TxnResponse>;
  /** Whether a failed call may have been applied (a timeout, a lost member). */
  isTransient(err: unknown): boolean;
}

/** etcd's defaults: 128 operations in each part of a transaction (`--max-txn-ops`), 1.5 MiB a request. */
const MAX_OPS = 128;
const MAX_BYTES = 1024 * 1024;
/** Requests this small are what concurrent writers send (a registration: 1 compare, 2 ops). */
const MAX_REQUEST_OPS = 8;

/** Writes with compares and no failure branch: the shape registrations, updates and expiries take. */
export function batchable(req: TxnRequest): boolean {
  return (
    (req.failure ?? []).length === 0 &&
    req.success.length > 0 &&
    req.compare.length + req.success.length <= MAX_REQUEST_OPS &&
    req.success.every((op) => op.type === 'put' || op.type === 'delete')
  );
}

interface Pending {
  req: TxnRequest;
  resolve(res: TxnResponse): void;
  reject(err: unknown): void;
}

/**
 * Group commit for etcd: the write transactions submitted during one event-loop turn go to etcd
 * as one transaction — one Raft round and one gRPC call instead of one each. etcd applies a
 * transaction all or nothing, so requests that touch the same key never share one (each must see
 * the other's write, as if sent alone), and when any compare fails the transaction's failure
 * branch reads every compared key: the requests whose compares fail there get their own
 * `succeeded: false`, and the others are sent again together. A batch that failed in a way that
 * may have applied it (a timeout) is sent again request by request through the single path,
 * which reads back an ambiguous write.
 */
export class TxnBatcher {
  private queue: Pending[] = [];
  private scheduled = false;

  constructor(private readonly sender: BatchSender) {}

  submit(req: TxnRequest): Promise<TxnResponse> {
    return new Promise<TxnResponse>((resolve, reject) => {
      this.queue.push({ req, resolve, reject });
      if (this.scheduled) return;
      this.scheduled = true;
      setImmediate(() => this.flush());
    });
  }

  private flush(): void {
    this.scheduled = false;
    const queue = this.queue;
    this.queue = [];
    for (const batch of partition(queue)) void this.run(batch);
  }

  private async run(batch: Pending[]): Promise<void> {
    if (batch.length === 1) {
      const [p] = batch as [Pending];
      await this.sender.single(p.req, false).then(p.resolve, p.reject);
      return;
    }
    let outcome: BatchOutcome;
    try {
      outcome = await this.sender.sendBatch(batch.map((p) => p.req));
    } catch (err) {
      const ambiguous = this.sender.isTransient(err);
      await Promise.all(batch.map((p) => this.sender.single(p.req, ambiguous).then(p.resolve, p.reject)));
      return;
    }
    if (outcome.applied) {
      batch.forEach((p, i) => p.resolve({ succeeded: true, revision: outcome.revision, results: outcome.results[i]! }));
      return;
    }
    const passing: Pending[] = [];
    for (const p of batch) {
      if (p.req.compare.every((c) => holds(c, outcome.current.get(c.key)))) passing.push(p);
      else p.resolve({ succeeded: false, revision: outcome.revision, results: [] });
    }
    if (passing.length === batch.length) {
      // Every compare holds on what etcd returned, yet the batch failed: a write raced the read.
      // Alone, each gets etcd's own answer.
      await Promise.all(passing.map((p) => this.sender.single(p.req, false).then(p.resolve, p.reject)));
      return;
    }
    await this.run(passing);
  }
}

/** Splits requests into transactions: no key in two requests of one, within etcd's limits. */
function partition(queue: Pending[]): Pending[][] {
  const batches: { members: Pending[]; keys: Set<string>; compares: number; ops: number; bytes: number }[] = [];
  for (const p of queue) {
    const keys = keysOf(p.req);
    const bytes = sizeOf(p.req);
    const fit = batches.find(
      (b) => b.compares + p.req.compare.length <= MAX_OPS && b.ops + p.req.success.length <= MAX_OPS && b.bytes + bytes <= MAX_BYTES && keys.every((k) => !b.keys.has(k)),
    );
    if (fit) {
      fit.members.push(p);
      for (const k of keys) fit.keys.add(k);
      fit.compares += p.req.compare.length;
      fit.ops += p.req.success.length;
      fit.bytes += bytes;
    } else {
      batches.push({ members: [p], keys: new Set(keys), compares: p.req.compare.length, ops: p.req.success.length, bytes });
    }
  }
  return batches.map((b) => b.members);
}

function keysOf(req: TxnRequest): string[] {
  const keys = req.compare.map((c) => c.key);
  for (const op of req.success) if (op.type === 'put' || op.type === 'delete') keys.push(op.key);
  return keys;
}

function sizeOf(req: TxnRequest): number {
  let n = 0;
  for (const c of req.compare) n += c.key.length + (c.target === 'value' ? c.value.length : 0) + 16;
  for (const op of req.success) n += (op.type === 'put' ? op.key.length + op.value.length : op.type === 'delete' ? op.key.length : 0) + 16;
  // Characters, not bytes: the margin below etcd's 1.5 MiB covers text outside ASCII.
  return n;
}
