import { signal } from '@preact/signals';
import type { Instance } from '@beacon/core';
import { authHeaders } from './api.js';
import { SseParser } from './sse.js';
import { summarize, type ServiceSummary } from './summary.js';

/** connecting: before the first snapshot; live: the stream is up; stale: it dropped and we retry; paused: the tab is hidden. */
export type StreamState = 'connecting' | 'live' | 'stale' | 'paused';

interface Change {
  index: number;
  type: 'upsert' | 'delete';
  service: string;
  id: string;
  instance?: Instance;
}

/** Bumped once per animation frame in which something changed: components read it to re-render. */
const version = signal(0);
export const streamState = signal<StreamState>('connecting');
/** When the stream last went down (for the stale badge). */
export const staleSince = signal<number | undefined>(undefined);
export const liveIndex = signal(0);
/** The User Timing measure each applied frame leaves (DevTools shows it; the browser test reads it). */
export const FRAME_MEASURE = 'beacon:frame';
let measures = 0;

const byId = new Map<string, Instance>();
const services = new Map<string, Map<string, Instance>>();
const summaries = new Map<string, ServiceSummary>();
/** Every service's summary, sorted by name; a new array whenever one changes. */
let summaryList: ServiceSummary[] = [];
const position = new Map<string, number>();

/**
 * Re-renders the calling component after every frame that applied changes: reading a signal's
 * value during render is what subscribes a Preact component to it.
 */
export function useLive(): number {
  return version.value;
}

export const instance = (id: string): Instance | undefined => byId.get(id);
export const serviceInstances = (name: string): Instance[] => [...(services.get(name)?.values() ?? [])].sort((a, b) => (a.id < b.id ? -1 : 1));
export const serviceSummary = (name: string): ServiceSummary | undefined => summaries.get(name);
export const allSummaries = (): readonly ServiceSummary[] => summaryList;
export const instanceCount = (): number => byId.size;

let pending: (Change | { reset: Instance[]; index: number })[] = [];
let frame = 0;

/** Applies everything that arrived since the last frame, once per frame: a burst of changes is one render. */
function flush(): void {
  frame = 0;
  const t0 = performance.now();
  const dirty = new Set<string>();
  for (const p of pending) {
    if ('reset' in p) {
      byId.clear();
      services.clear();
      summaries.clear();
      summaryList = [];
      position.clear();
      for (const i of p.reset) put(i, dirty);
      liveIndex.value = p.index;
      continue;
    }
    const old = byId.get(p.id);
    if (old) {
      services.get(old.service)?.delete(p.id);
      dirty.add(old.service);
      byId.delete(p.id);
    }
    if (p.type === 'upsert' && p.instance) put(p.instance, dirty);
    dirty.add(p.service);
    liveIndex.value = Math.max(liveIndex.value, p.index);
  }
  pending = [];
  let membership = false;
  for (const name of dirty) {
    const m = services.get(name);
    if (!m || m.size === 0) {
      services.delete(name);
      membership = summaries.delete(name) || membership;
    } else {
      membership = !summaries.has(name) || membership;
      summaries.set(name, summarize(name, m.values()));
    }
  }
  if (membership) {
    // Services came or went: sort again (rare). Otherwise the changed ones are swapped in place.
    summaryList = [...summaries.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    position.clear();
    summaryList.forEach((s, k) => position.set(s.name, k));
  } else if (dirty.size > 0) {
    summaryList = [...summaryList];
    for (const name of dirty) summaryList[position.get(name)!] = summaries.get(name)!;
  }
  version.value++;
  // Preact renders the components that read `version` in microtasks right after this; a message
  // event runs after them, so the figure is the frame's whole scripting: applying plus rendering.
  afterRender(() => {
    // The timeline buffer keeps every measure: start over now and then so a busy tab does not grow it.
    if (++measures > 1000) {
      performance.clearMeasures(FRAME_MEASURE);
      measures = 1;
    }
    performance.measure(FRAME_MEASURE, { start: t0 });
  });
}

const channel = new MessageChannel();
const afterRenderQueue: (() => void)[] = [];
channel.port1.onmessage = () => afterRenderQueue.shift()?.();
function afterRender(fn: () => void): void {
  afterRenderQueue.push(fn);
  channel.port2.postMessage(0);
}

function put(i: Instance, dirty: Set<string>): void {
  byId.set(i.id, i);
  let m = services.get(i.service);
  if (!m) services.set(i.service, (m = new Map()));
  m.set(i.id, i);
  dirty.add(i.service);
}

function enqueue(p: (typeof pending)[number]): void {
  pending.push(p);
  // Hidden tabs get no animation frames: nothing renders until the tab is shown again.
  if (!frame) frame = requestAnimationFrame(flush);
}

let abort: AbortController | undefined;
let lastId: string | undefined;
let retry: ReturnType<typeof setTimeout> | undefined;

/** Reads /api/v1/watch with fetch (EventSource cannot send the token header), resuming from the last id. */
async function connect(): Promise<void> {
  clearTimeout(retry);
  abort?.abort();
  const ac = (abort = new AbortController());
  try {
    const res = await fetch(`/api/v1/watch${lastId ? `?since=${encodeURIComponent(lastId)}` : ''}`, {
      headers: { accept: 'text/event-stream', ...authHeaders() },
      signal: ac.signal,
      cache: 'no-store',
    });
    if (!res.ok || !res.body) throw new Error(`watch answered ${res.status}`);
    const parser = new SseParser();
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      parser.push(value, (e) => {
        if (e.id !== undefined) lastId = e.id;
        if (e.event === 'reset') {
          const r = JSON.parse(e.data) as { index: number; instances: Instance[] };
          enqueue({ reset: r.instances, index: r.index });
        } else if (e.event === 'change') enqueue(JSON.parse(e.data) as Change);
        else return;
        if (streamState.value !== 'live') {
          streamState.value = 'live';
          staleSince.value = undefined;
        }
      });
    }
  } catch {
    if (ac.signal.aborted) return;
  }
  if (ac.signal.aborted) return;
  if (streamState.value !== 'stale') {
    streamState.value = 'stale';
    staleSince.value = Date.now();
  }
  retry = setTimeout(() => void connect(), 1000);
}

/** Opens the tab's one stream; closes it while the tab is hidden and resumes from the last id when shown. */
export function startLive(): void {
  document.addEventListener('visibilitychange', () => {
    if (document.hidden) {
      clearTimeout(retry);
      abort?.abort();
      streamState.value = 'paused';
    } else void connect();
  });
  if (!document.hidden) void connect();
  else streamState.value = 'paused';
}

/** A new token sees other things: start over with a full snapshot. */
export function restartLive(): void {
  lastId = undefined;
  streamState.value = 'connecting';
  void connect();
}
