/**
 * The Store: the only durable state, modelled on etcd v3 so that the embedded (SQLite) and the
 * clustered (etcd) backends are interchangeable and pass one contract suite.
 *
 * - Every mutation bumps one global revision; a transaction is one revision.
 * - Keys carry createRevision, modRevision and version (number of puts since creation).
 * - Leases: keys attached to a lease are deleted, in one revision, when it expires or is revoked.
 * - Watch a prefix from a revision; a revision older than retained history fails with a
 *   {@link BeaconError} of code `compacted`, and the caller must list again and watch from there.
 */
export type StoreKind = 'embedded' | 'etcd';

/** 0 means "no lease". */
export type LeaseId = number;

export interface KeyValue {
  key: string;
  value: string;
  createRevision: number;
  modRevision: number;
  version: number;
  lease: LeaseId;
}

/** A condition in a transaction. `version == 0` / `createRevision == 0` test for absence. */
export type Compare =
  | { key: string; target: 'modRevision'; op: CompareOp; value: number }
  | { key: string; target: 'createRevision'; op: CompareOp; value: number }
  | { key: string; target: 'version'; op: CompareOp; value: number }
  | { key: string; target: 'value'; op: 'equal' | 'notEqual'; value: string }
  | { key: string; target: 'exists'; value: boolean };

export type CompareOp = 'equal' | 'notEqual' | 'less' | 'greater';

export type Op =
  | { type: 'put'; key: string; value: string; lease?: LeaseId }
  | { type: 'delete'; key: string }
  | { type: 'deletePrefix'; prefix: string }
  | { type: 'get'; key: string };

export interface TxnRequest {
  compare: Compare[];
  success: Op[];
  failure?: Op[];
}

export interface OpResult {
  /** For get: the key, if present. For put: the previous value, if any. */
  kv?: KeyValue;
  /** For delete / deletePrefix: how many keys went. */
  deleted?: number;
}

export interface TxnResponse {
  succeeded: boolean;
  /** The store's revision after the transaction (unchanged if nothing was written). */
  revision: number;
  results: OpResult[];
}

export interface RangeResponse {
  kvs: KeyValue[];
  /** The revision the listing is consistent with: watch from `revision + 1`. */
  revision: number;
}

export type WatchEventType = 'put' | 'delete';

/**
 * Watchers share one event object per change: every field is read-only by type, so nobody changes
 * it under the others. (The embedded store used to Object.freeze each event, its key-values and the
 * array on every write; that cost showed in the registration profile and the types already forbid
 * what it guarded against.)
 */
export interface WatchEvent {
  readonly type: WatchEventType;
  /** For put: the new key-value. For delete: key, with modRevision set to the deleting revision. */
  readonly kv: Readonly<KeyValue>;
  /** The value before this event, when known (the embedded store's feed; the etcd store's watch does not ask etcd for it). */
  readonly prevKv?: Readonly<KeyValue>;
}

/** Events of one revision, delivered together and in revision order. */
export interface WatchBatch {
  readonly revision: number;
  readonly events: readonly WatchEvent[];
}

export interface WatchOptions {
  /** First revision to deliver; events with revision >= fromRevision. */
  fromRevision: number;
  signal?: AbortSignal;
  /**
   * Told when the feed may be missing changes the store has acknowledged (true: it could not be
   * confirmed current for a while, e.g. its etcd member stalled) and when it is confirmed current
   * again (false). A store whose feed cannot fall behind unseen (the embedded one) never calls it.
   */
  onBehind?: (behind: boolean) => void;
}

export interface LeaseInfo {
  id: LeaseId;
  ttlMs: number;
  /** Milliseconds until expiry; may be below 0 just before the expiry fires. */
  remainingMs: number;
}

/** What {@link Store.restore} puts back: keys with the snapshot's own lease ids, and those leases' TTLs. */
export interface RestoreRequest {
  /** Every key under it is replaced… */
  prefix: string;
  /** …except those under these (state that belongs to the running servers, not to the snapshot). */
  keep: string[];
  leases: { id: LeaseId; ttlMs: number }[];
  /** Under `prefix` and outside `keep`, each key once; `lease` is 0 or one of `leases`. */
  kvs: { key: string; value: string; lease: LeaseId }[];
}

export interface Store {
  readonly kind: StoreKind;
  get(key: string): Promise<KeyValue | undefined>;
  /** Keys starting with `prefix`, sorted. A plain string prefix: `/a/b` matches `/a/bc` too; pass `/a/b/` for children only. */
  range(prefix: string): Promise<RangeResponse>;
  /** Resolves to the revision of the write. A put without `lease` detaches the key from any lease (as etcd). */
  put(key: string, value: string, opts?: { lease?: LeaseId }): Promise<number>;
  /** Resolves to the store's revision after the delete (unchanged when the key was absent). */
  delete(key: string): Promise<number>;
  /**
   * Only a change moves the revision: a txn whose compares failed with no failure ops, one that
   * only reads, or one that deletes absent keys leaves it where it was. Within one branch a key
   * may be written once (not put twice, not both put and deleted), as in etcd.
   */
  txn(req: TxnRequest): Promise<TxnResponse>;
  currentRevision(): Promise<number>;

  grantLease(ttlMs: number): Promise<LeaseId>;
  /** Renews the lease to its full TTL. Fails with `not_found` when it has expired or never was. */
  keepAlive(id: LeaseId): Promise<LeaseInfo>;
  /** Deletes the lease and its keys in one revision. Fails with `not_found` when it has expired or never was. */
  revokeLease(id: LeaseId): Promise<void>;
  /** Fails with `not_found` when the lease has expired or never was. */
  leaseInfo(id: LeaseId): Promise<LeaseInfo | undefined>;

  /**
   * Replaces the keys under `req.prefix` with `req.kvs` in one revision, whose watch batch carries
   * a put for each restored key and a delete for each key that is gone, so every watcher follows
   * without relisting. Each snapshot lease becomes a fresh lease of its TTL (no one could have
   * renewed it meanwhile, as after a restart), and a lease left holding no key is revoked with
   * the state it belonged to. Resolves to that revision.
   */
  restore(req: RestoreRequest): Promise<number>;

  /** Changes under `prefix` from `fromRevision`, as an async stream ended by `signal` or `close()`. */
  watch(prefix: string, opts: WatchOptions): AsyncIterable<WatchBatch>;
  /** Bytes the store takes on disk (embedded: the SQLite database; etcd: the answering member's dbSize). */
  sizeBytes(): Promise<number>;
  close(): Promise<void>;
}
