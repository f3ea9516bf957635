#!/usr/bin/env node
// Summarises a V8 CPU profile (`node --cpu-prof`): self time by function and by where the code
// lives (Beacon's packages, each dependency, Node's internals, native/GC), in % of the busy
// samples (those not idle in the event loop), so a profile of a process that also waited reads
// the same as one of a process that never did.
//
//   node bench/lib/profile-summary.mjs FILE.cpuprofile [--top 30] [--window FILE.json:NAME]
//
// --window takes the samples of one phase only: FILE.json holds `windows.NAME = { start, end }` (or a list of them)
// in µs of the monotonic clock V8 stamps its samples with (bench/cluster writes windows.json).
// It also prints inclusive time by function (self plus everything it called).
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '30' }, window: { type: 'string' } } });
if (positionals.length !== 1) {
  console.error('usage: node bench/lib/profile-summary.mjs FILE.cpuprofile [--top N]');
  process.exit(2);
}
const profile = JSON.parse(readFileSync(positionals[0], 'utf8'));
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
let samples = profile.samples;
if (values.window) {
  const cut = values.window.lastIndexOf(':');
  const w = JSON.parse(readFileSync(values.window.slice(0, cut), 'utf8')).windows[values.window.slice(cut + 1)];
  if (!w) throw new Error(`no window ${values.window}`);
  // One { start, end } or a list of them (one per write of a fan-out phase).
  const spans = Array.isArray(w) ? w : [w];
  let t = profile.startTime;
  samples = profile.samples.filter((_, i) => ((t += profile.timeDeltas[i]), spans.some((x) => t >= x.start && t <= x.end)));
}
const selfSamples = new Map();
for (const id of samples) selfSamples.set(id, (selfSamples.get(id) ?? 0) + 1);
const idle = new Set(profile.nodes.filter((n) => n.callFrame.functionName === '(idle)').map((n) => n.id));
const total = samples.filter((id) => !idle.has(id)).length;

/** Where a frame's code lives, coarsely. */
function area(url, name) {
  if (!url) return name.startsWith('(') ? name : '(native)';
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/')[0]}`;
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1];
  const ours = /packages\/([^/]+)\//.exec(url);
  return ours ? `@beacon/${ours[1]}` : url;
}

const fns = new Map();
const areas = new Map();
for (const [id, n] of selfSamples) {
  if (idle.has(id)) continue;
  const { functionName, url, lineNumber } = byId.get(id).callFrame;
  const fn = `${functionName || '(anonymous)'} ${url ? `${url.split('/').slice(-2).join('/')}:${lineNumber + 1}` : ''}`;
  fns.set(fn, (fns.get(fn) ?? 0) + n);
  const a = area(url, functionName);
  areas.set(a, (areas.get(a) ?? 0) + n);
}
const pct = (n) => `${((n / total) * 100).toFixed(1).padStart(5)} %`;
console.log(`${total} busy samples of ${samples.length}\n\nself time by area, % of busy:`);
for (const [a, n] of [...areas].sort((x, y) => y[1] - x[1])) console.log(`${pct(n)}  ${a}`);
console.log(`\nself time by function (top ${values.top}):`);
for (const [f, n] of [...fns].sort((x, y) => y[1] - x[1]).slice(0, Number(values.top))) console.log(`${pct(n)}  ${f}`);

if (values.window) {
  // Inclusive time: a sample counts once for every distinct JavaScript function on its stack.
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const incl = new Map();
  for (const [id, n] of selfSamples) {
    if (idle.has(id)) continue;
    const seen = new Set();
    for (let at = id; at !== undefined; at = parent.get(at)) {
      const { functionName, url, lineNumber } = byId.get(at).callFrame;
      if (!url) continue;
      const fn = `${functionName || '(anonymous)'} ${url.split('/').slice(-2).join('/')}:${lineNumber + 1}`;
      if (seen.has(fn)) continue;
      seen.add(fn);
      incl.set(fn, (incl.get(fn) ?? 0) + n);
    }
  }
  console.log(`\ninclusive time by function (top ${values.top}):`);
  for (const [f, n] of [...incl].sort((x, y) => y[1] - x[1]).slice(0, Number(values.top))) console.log(`${pct(n)}  ${f}`);
}
