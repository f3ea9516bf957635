import { errors } from '@beacon/core';
import { isWellFormedText } from './prefix.js';
import type { Compare, LeaseId, Op, RestoreRequest, TxnRequest } from './types.js';

/**
 * Request checks shared by every Store backend, so a bad request fails the same way (and before
 * any I/O) whichever backend is behind it. Each backend passes its own limits.
 */
export interface StoreLimits {
  keyChars?: number;
  valueBytes?: number;
  opsPerTxn?: number;
}

export function checkKey(key: unknown, limits: StoreLimits = {}): asserts key is string {
  if (typeof key !== 'string' || key.length === 0) throw errors.invalid('a key must be a non-empty string');
  if (limits.keyChars !== undefined && key.length > limits.keyChars) throw errors.invalid(`a key may have at most ${limits.keyChars} characters`);
  if (!isWellFormedText(key)) throw errors.invalid('a key must be well-formed Unicode (no lone surrogates)');
}

export function checkPrefix(prefix: unknown, limits: StoreLimits = {}): asserts prefix is string {
  if (typeof prefix !== 'string') throw errors.invalid('a prefix must be a string');
  if (limits.keyChars !== undefined && prefix.length > limits.keyChars) throw errors.invalid(`a prefix may have at most ${limits.keyChars} characters`);
  if (!isWellFormedText(prefix)) throw errors.invalid('a prefix must be well-formed Unicode (no lone surrogates)');
}

export function checkLeaseId(id: unknown): asserts id is LeaseId {
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 1) throw errors.invalid(`a lease id must be a positive integer, got ${String(id)}`);
}

/** Everything a backend can check before sending a txn: shape, compares, ops, etcd's branch rule, and the backend's limits. */
export function checkTxn(req: TxnRequest, limits: StoreLimits = {}): void {
  if (!req || !Array.isArray(req.compare) || !Array.isArray(req.success) || (req.failure !== undefined && !Array.isArray(req.failure))) {
    throw errors.invalid('a txn needs compare and success arrays (and optionally failure)');
  }
  const count = req.compare.length + req.success.length + (req.failure?.length ?? 0);
  if (limits.opsPerTxn !== undefined && count > limits.opsPerTxn) throw errors.invalid(`a txn may have at most ${limits.opsPerTxn} compares and ops, got ${count}`);
  for (const c of req.compare) checkCompare(c, limits);
  checkBranch(req.success, limits);
  if (req.failure) checkBranch(req.failure, limits);
}

function checkCompare(c: Compare, limits: StoreLimits): void {
  checkKey(c?.key, limits);
  const key = c.key;
  switch (c.target) {
    case 'exists':
      if (typeof c.value !== 'boolean') throw errors.invalid(`compare on exists of ${key} needs a boolean`);
      return;
    case 'value':
      if (c.op !== 'equal' && c.op !== 'notEqual') throw errors.invalid(`compare on value of ${key} takes equal or notEqual`);
      if (typeof c.value !== 'string') throw errors.invalid(`compare on value of ${key} needs a string`);
      return;
    case 'version':
    case 'createRevision':
    case 'modRevision':
      if (!['equal', 'notEqual', 'less', 'greater'].includes(c.op)) throw errors.invalid(`unknown compare operator ${String(c.op)}`);
      if (typeof c.value !== 'number' || !Number.isSafeInteger(c.value)) throw errors.invalid(`compare on ${c.target} of ${key} needs an integer`);
      return;
    default: {
      const never: never = c;
      throw errors.invalid(`unknown compare target in ${JSON.stringify(never)}`);
    }
  }
}

function checkValue(key: string, value: unknown, limits: StoreLimits): void {
  if (typeof value !== 'string') throw errors.invalid(`the value of ${key} must be a string`);
  if (limits.valueBytes !== undefined && value.length > limits.valueBytes / 3 && Buffer.byteLength(value) > limits.valueBytes) {
    throw errors.tooLarge(`the value of ${key} is larger than ${limits.valueBytes} bytes`);
  }
  if (!isWellFormedText(value)) throw errors.invalid(`the value of ${key} must be well-formed Unicode`);
}

/** A restore is refused whole, before anything is written, if any key, value or lease would be refused alone. */
export function checkRestore(req: RestoreRequest, limits: StoreLimits & { maxTtlMs: number }): void {
  checkPrefix(req.prefix, limits);
  for (const k of req.keep) checkPrefix(k, limits);
  const leases = new Set<LeaseId>();
  for (const l of req.leases) {
    checkLeaseId(l.id);
    if (!Number.isSafeInteger(l.ttlMs) || l.ttlMs < 1 || l.ttlMs > limits.maxTtlMs) throw errors.invalid(`lease ${l.id}: TTL must be a whole number of milliseconds in 1..${limits.maxTtlMs}, got ${l.ttlMs}`);
    if (leases.has(l.id)) throw errors.invalid(`lease ${l.id} appears twice`);
    leases.add(l.id);
  }
  const keys = new Set<string>();
  for (const kv of req.kvs) {
    checkKey(kv.key, limits);
    if (!kv.key.startsWith(req.prefix) || req.keep.some((k) => kv.key.startsWith(k))) throw errors.invalid(`key ${kv.key} is outside what a restore replaces (${req.prefix}, less ${req.keep.join(', ') || 'nothing'})`);
    checkValue(kv.key, kv.value, limits);
    if (kv.lease !== 0 && !leases.has(kv.lease)) throw errors.invalid(`key ${kv.key} names lease ${kv.lease}, which is not among the restored leases`);
    if (keys.has(kv.key)) throw errors.invalid(`key ${kv.key} appears twice`);
    keys.add(kv.key);
  }
}

/**
 * As etcd: within one branch a key is written at most once, and never both put and deleted.
 * Branches are short (a registration's is a put and a delete), so the pairs are compared in place
 * rather than through two Sets and an array per txn.
 */
function checkBranch(ops: Op[], limits: StoreLimits): void {
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i];
    switch (op?.type) {
      case 'get':
        checkKey(op.key, limits);
        break;
      case 'put':
        checkKey(op.key, limits);
        checkValue(op.key, op.value, limits);
        if (op.lease !== undefined && op.lease !== 0) checkLeaseId(op.lease);
        for (let j = 0; j < i; j++) {
          const o = ops[j]!;
          if (o.type === 'put' && o.key === op.key) throw errors.invalid(`a txn branch puts ${op.key} twice`);
        }
        break;
      case 'delete':
        checkKey(op.key, limits);
        break;
      case 'deletePrefix':
        checkPrefix(op.prefix, limits);
        break;
      default:
        throw errors.invalid(`unknown txn op ${JSON.stringify(op)}`);
    }
  }
  for (const put of ops) {
    if (put.type !== 'put') continue;
    for (const o of ops) {
      if ((o.type === 'delete' && o.key === put.key) || (o.type === 'deletePrefix' && put.key.startsWith(o.prefix))) {
        throw errors.invalid(`a txn branch both puts and deletes ${put.key}`);
      }
    }
  }
}
