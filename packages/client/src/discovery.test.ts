import { describe, expect, it } from 'vitest';
import { errors, ManualClock, seededRandom, type Instance } from '@beacon/core';
import { instanceFixture as instance } from '@beacon/core/testing';
import { UNSUPPORTED, ViewSync, type DiscoveryTransport } from './discovery.js';
import { resolveFilter } from './filter.js';
import type { SseEvent } from './sse.js';
import { ServiceView, type ViewEvent, type ViewHealth } from './view.js';

async function flush(): Promise<void> {
  await new Promise((r) => setImmediate(r));
}


/** An SSE stream the test writes to. */
class Stream implements AsyncIterable<SseEvent> {
  private queue: (SseEvent | Error | null)[] = [];
  private wake: (() => void) | undefined;
  constructor(
    private readonly signal: AbortSignal,
    private readonly onActivity: () => void,
  ) {
    signal.addEventListener('abort', () => this.wake?.());
  }
  push(event: string, data: unknown, id?: string) {
    this.queue.push({ event, data: JSON.stringify(data), ...(id ? { id } : {}) });
    this.wake?.();
  }
  ping() {
    this.onActivity();
  }
  end() {
    this.queue.push(null);
    this.wake?.();
  }
  fail(err: Error) {
    this.queue.push(err);
    this.wake?.();
  }
  async *[Symbol.asyncIterator]() {
    for (;;) {
      if (this.signal.aborted) throw this.signal.reason;
      const next = this.queue.shift();
      if (next === undefined) {
        await new Promise<void>((r) => (this.wake = r));
        continue;
      }
      if (next === null) return;
      if (next instanceof Error) throw next;
      this.onActivity();
      yield next;
    }
  }
}

class FakeTransport implements DiscoveryTransport {
  down = new Set<string>();
  noStream = new Set<string>();
  streams: { server: string; stream: Stream }[] = [];
  reads: { server: string; index: number }[] = [];
  readAnswers: { index: number; instances: Instance[] }[] = [];
  preferred: string | undefined;
  constructor(readonly list: string[]) {}
  servers() {
    return this.list;
  }
  prefer(s: string) {
    this.preferred = s;
  }
  async watch(server: string, _service: string, signal: AbortSignal, onActivity: () => void) {
    if (this.down.has(server)) throw errors.unavailable(`${server}: connect ECONNREFUSED`);
    if (this.noStream.has(server)) return UNSUPPORTED;
    const stream = new Stream(signal, onActivity);
    this.streams.push({ server, stream });
    return stream;
  }
  async read(server: string, _service: string, _f: unknown, index: number, _wait: number, signal: AbortSignal) {
    if (this.down.has(server)) throw errors.unavailable(`${server}: down`);
    this.reads.push({ server, index });
    const answer = this.readAnswers.shift();
    if (answer) return answer;
    return new Promise<never>((_, reject) => signal.addEventListener('abort', () => reject(signal.reason)));
  }
  last(): Stream {
    return this.streams[this.streams.length - 1]!.stream;
  }
}

function setup(servers = ['s1', 's2'], mode?: 'auto' | 'stream' | 'blocking') {
  const clock = new ManualClock();
  const transport = new FakeTransport(servers);
  const view = new ServiceView('api', resolveFilter());
  const errorsSeen: Error[] = [];
  const sync = new ViewSync(view, transport, { clock, random: seededRandom(1), reconnect: { baseMs: 100, maxMs: 1_000 }, idleTimeoutMs: 45_000, ...(mode ? { mode } : {}), onError: (e) => errorsSeen.push(e) });
  const events: ViewEvent[] = [];
  view.onChange((e) => events.push(...e));
  const health: ViewHealth[] = [];
  view.onHealth((h) => health.push(h));
  return { clock, transport, view, events, health, errorsSeen, start: () => void sync.start() };
}

describe('ServiceView', () => {
  it('diffs resets into added / changed / removed and leaves unrelated updates silent', () => {
    const view = new ServiceView('api', resolveFilter());
    const events: ViewEvent[] = [];
    view.onChange((e) => events.push(...e));
    view.reset(5, [instance('a'), instance('b')], 0);
    view.reset(6, [instance('a'), instance('b', { modifyIndex: 6, tags: ['x'] }), instance('c')], 0);
    view.reset(7, [instance('b', { modifyIndex: 6, tags: ['x'] }), instance('c')], 0);
    expect(events.map((e) => `${e.type}:${e.instance.id}`)).toEqual(['added:a', 'added:b', 'changed:b', 'added:c', 'removed:a']);
    expect(view.instances().map((i) => i.id)).toEqual(['b', 'c']);
    expect(view.index).toBe(7);
  });

  it('applies pushed changes through the filter: an instance that stops matching is removed', () => {
    const view = new ServiceView('api', resolveFilter({ tags: ['v2'] }));
    const events: ViewEvent[] = [];
    view.onChange((e) => events.push(...e));
    view.reset(1, [], 0);
    view.apply(2, { type: 'upsert', instance: instance('a', { tags: ['v2'] }) }, 0);
    view.apply(3, { type: 'upsert', instance: instance('b', { tags: ['v1'] }) }, 0);
    view.apply(4, { type: 'upsert', instance: instance('a', { tags: ['v1'], modifyIndex: 4 }) }, 0);
    view.apply(5, { type: 'delete', id: 'zzz' }, 0);
    expect(events.map((e) => `${e.type}:${e.instance.id}`)).toEqual(['added:a', 'removed:a']);
    expect(view.index).toBe(5);
  });

  it('ready() resolves on the first answer and rejects once closed', async () => {
    const view = new ServiceView('api', resolveFilter());
    const ready = view.ready();
    view.reset(1, [], 0);
    await expect(ready).resolves.toBeUndefined();
    const other = new ServiceView('api', resolveFilter());
    const waiting = other.ready();
    other.close();
    await expect(waiting).rejects.toMatchObject({ code: 'unavailable' });
  });

  it('rejects an invalid service name', () => {
    expect(() => new ServiceView('Bad_Name', resolveFilter())).toThrow(/invalid service name/);
  });
});

describe('ViewSync (manual clock)', () => {
  it('follows the push stream: reset, then changes', async () => {
    const { transport, view, events, start } = setup();
    start();
    await flush();
    const s = transport.last();
    s.push('reset', { index: 3, instances: [instance('a'), instance('b', { service: 'other' })] }, '3');
    s.push('change', { index: 4, type: 'upsert', service: 'api', id: 'c', instance: instance('c') }, '4');
    s.push('change', { index: 5, type: 'delete', service: 'api', id: 'a' }, '5');
    await flush();
    expect(view.instances().map((i) => i.id)).toEqual(['c']);
    expect(events.map((e) => `${e.type}:${e.instance.id}`)).toEqual(['added:a', 'added:c', 'removed:a']);
    expect(transport.preferred).toBe('s1');
  });

  it('fails over to the next server, and after a failed round turns stale and backs off on the clock', async () => {
    const { clock, transport, view, health, start } = setup();
    transport.down.add('s1');
    start();
    await flush();
    expect(transport.streams.map((s) => s.server)).toEqual(['s2']);
    transport.last().push('reset', { index: 1, instances: [instance('a')] });
    await flush();
    expect(view.stale).toBe(false);

    transport.down.add('s2');
    transport.last().fail(new Error('socket hang up'));
    await flush();
    // The stream had delivered: reconnect at once (both servers refuse), then stale.
    expect(view.stale).toBe(true);
    expect(view.instances().map((i) => i.id)).toEqual(['a']);
    expect(health.map((h) => h.stale)).toEqual([true]);
    expect(view.state.error?.message).toMatch(/ECONNREFUSED/);
    const streamsBefore = transport.streams.length;

    transport.down.clear();
    clock.advance(49); // the first backoff is at least base/2 = 50 ms
    await flush();
    expect(transport.streams.length).toBe(streamsBefore);
    clock.advance(1_000);
    await flush();
    expect(transport.streams.length).toBe(streamsBefore + 1);
    transport.last().push('reset', { index: 9, instances: [instance('a'), instance('b')] });
    await flush();
    expect(view.stale).toBe(false);
    expect(view.instances()).toHaveLength(2);
    expect(health.map((h) => h.stale)).toEqual([true, false]);
  });

  it('backs off exponentially (full jitter, capped) while every server is down', async () => {
    const { clock, transport, start } = setup(['s1']);
    transport.down.add('s1');
    const attempts: number[] = [];
    const origWatch = transport.watch.bind(transport);
    transport.watch = (...a) => (attempts.push(clock.now()), origWatch(...a));
    start();
    await flush();
    for (let i = 0; i < 40; i++) {
      clock.advance(100);
      await flush();
    }
    const gaps = attempts.slice(1).map((t, i) => t - attempts[i]!);
    expect(gaps.length).toBeGreaterThan(3);
    for (const g of gaps) expect(g).toBeLessThanOrEqual(1_000 + 100 + 50);
    expect(gaps.every((g) => g >= 50)).toBe(true);
  });

  it('drops a silent stream after the idle timeout and reconnects', async () => {
    const { clock, transport, errorsSeen, start } = setup(['s1']);
    start();
    await flush();
    transport.last().push('reset', { index: 1, instances: [] });
    await flush();
    clock.advance(30_000);
    transport.last().ping(); // pings keep it alive
    clock.advance(30_000);
    await flush();
    expect(transport.streams).toHaveLength(1);
    clock.advance(15_000);
    await flush();
    expect(transport.streams).toHaveLength(2);
    expect(errorsSeen.some((e) => /silent/.test(e.message))).toBe(true);
  });

  it('falls back to blocking reads on a server without a stream, passing the index along', async () => {
    const { transport, view, start } = setup(['s1']);
    transport.noStream.add('s1');
    transport.readAnswers.push({ index: 4, instances: [instance('a')] }, { index: 6, instances: [instance('a'), instance('b')] });
    start();
    await flush();
    await flush();
    expect(view.instances().map((i) => i.id)).toEqual(['a', 'b']);
    expect(transport.reads.map((r) => r.index)).toEqual([0, 4, 6]);
  });

  it('starts over when a blocking read answers an older index (a restarted server)', async () => {
    const { transport, view, start } = setup(['s1'], 'blocking');
    transport.readAnswers.push({ index: 50, instances: [instance('a')] }, { index: 3, instances: [instance('b')] }, { index: 4, instances: [instance('b')] });
    start();
    await flush();
    await flush();
    expect(transport.reads.map((r) => r.index)).toEqual([0, 50, 0, 4]);
    expect(view.instances().map((i) => i.id)).toEqual(['b']);
  });

  it('stops when the view closes', async () => {
    const { clock, transport, view, start } = setup(['s1']);
    start();
    await flush();
    view.close();
    await flush();
    clock.advance(10_000);
    await flush();
    expect(transport.streams).toHaveLength(1);
    expect(clock.timers).toBe(0);
  });
});
