// Where a V8 heap snapshot's bytes go: self size by node type, by constructor (objects) and the
// strings held in most copies. Reads the `.heapsnapshot` file without JSON.parse of the whole of
// it, which would exceed V8's longest string for a server holding 100,000 instances.
//   node bench/lib/heap-summary.mjs FILE.heapsnapshot [--top N]
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Parses the numbers of the JSON array that starts after `"name":[` in `buf`. */
function numberArray(buf, name) {
  const start = buf.indexOf(`"${name}":[`);
  if (start < 0) throw new Error(`no "${name}" array in the snapshot`);
  const out = [];
  let n = 0;
  let inNum = false;
  for (let i = start + name.length + 4; i < buf.length; i++) {
    const c = buf[i];
    if (c >= 48 && c <= 57) {
      n = n * 10 + (c - 48);
      inNum = true;
    } else {
      if (inNum) out.push(n);
      n = 0;
      inNum = false;
      if (c === 93) return out; // ]
    }
  }
  throw new Error(`unterminated "${name}" array`);
}

/**
 * @param {Buffer} buf the snapshot file
 * @returns {{ total: number, nodes: number, byType: object[], byConstructor: object[], repeatedStrings: object[] }}
 */
export function summarizeHeapSnapshot(buf, top = 15) {
  const metaEnd = buf.indexOf('"nodes":[');
  const head = buf.subarray(0, metaEnd).toString('utf8');
  const meta = JSON.parse(head.slice(head.indexOf('{', 1), head.lastIndexOf('}') + 1)).meta;
  const fields = meta.node_fields;
  const types = meta.node_types[0];
  const width = fields.length;
  const fType = fields.indexOf('type');
  const fName = fields.indexOf('name');
  const fSize = fields.indexOf('self_size');
  const nodes = numberArray(buf, 'nodes');
  const sStart = buf.indexOf('"strings":[');
  const sEnd = buf.lastIndexOf(']');
  const strings = JSON.parse(buf.subarray(sStart + 10, sEnd + 1).toString('utf8'));
  const byType = new Map();
  const byCtor = new Map();
  const byString = new Map();
  let total = 0;
  const add = (m, k, size) => {
    const e = m.get(k) ?? { count: 0, bytes: 0 };
    e.count++;
    e.bytes += size;
    m.set(k, e);
  };
  for (let i = 0; i < nodes.length; i += width) {
    const type = types[nodes[i + fType]];
    const size = nodes[i + fSize];
    const name = strings[nodes[i + fName]];
    total += size;
    add(byType, type, size);
    if (type === 'object' || type === 'closure' || type === 'array' || type === 'hidden' || type === 'code') add(byCtor, `${type}: ${name.length > 60 ? name.slice(0, 57) + '…' : name}`, size);
    if (type === 'string' || type === 'concatenated string' || type === 'sliced string') add(byString, name, size);
  }
  const rows = (m, f = (k) => k) =>
    [...m.entries()]
      .sort((a, b) => b[1].bytes - a[1].bytes)
      .slice(0, top)
      .map(([k, v]) => ({ what: f(k), count: v.count, mb: Math.round((v.bytes / 2 ** 20) * 10) / 10 }));
  const repeated = new Map([...byString].filter(([, v]) => v.count > 1));
  return {
    totalMb: Math.round((total / 2 ** 20) * 10) / 10,
    nodes: nodes.length / width,
    byType: rows(byType),
    byConstructor: rows(byCtor),
    repeatedStrings: rows(repeated, (s) => JSON.stringify(s.length > 50 ? s.slice(0, 47) + '…' : s)),
  };
}

export function printHeapSummary(s, out = (l) => console.log(l)) {
  out(`heap snapshot: ${s.totalMb} MB in ${s.nodes} nodes`);
  for (const [title, list] of [
    ['by type', s.byType],
    ['by constructor (objects, arrays, closures, code)', s.byConstructor],
    ['strings held in more than one copy', s.repeatedStrings],
  ]) {
    out(`  ${title}:`);
    for (const r of list) out(`    ${String(r.mb).padStart(7)} MB ${String(r.count).padStart(9)}  ${r.what}`);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const file = process.argv[2];
  if (!file) {
    console.error('usage: node bench/lib/heap-summary.mjs FILE.heapsnapshot [--top N]');
    process.exit(2);
  }
  const t = process.argv.indexOf('--top');
  printHeapSummary(summarizeHeapSnapshot(readFileSync(file), t > 0 ? Number(process.argv[t + 1]) : 15));
}
