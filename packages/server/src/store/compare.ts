import type { Compare, CompareOp, KeyValue } from './types.js';

/**
 * A transaction's compare evaluated as etcd does, against the key as it is (`undefined`: absent).
 * An absent key has revisions and version 0, and a value comparison against it is false whatever
 * the operator.
 */
export function holds(c: Compare, kv: Pick<KeyValue, 'value' | 'version' | 'createRevision' | 'modRevision'> | undefined): boolean {
  switch (c.target) {
    case 'exists':
      return (kv !== undefined) === c.value;
    case 'value':
      if (!kv) return false;
      return c.op === 'equal' ? kv.value === c.value : kv.value !== c.value;
    case 'version':
      return compareNumbers(kv?.version ?? 0, c.op, c.value);
    case 'createRevision':
      return compareNumbers(kv?.createRevision ?? 0, c.op, c.value);
    case 'modRevision':
      return compareNumbers(kv?.modRevision ?? 0, c.op, c.value);
  }
}

function compareNumbers(actual: number, op: CompareOp, expected: number): boolean {
  switch (op) {
    case 'equal':
      return actual === expected;
    case 'notEqual':
      return actual !== expected;
    case 'less':
      return actual < expected;
    case 'greater':
      return actual > expected;
  }
}
