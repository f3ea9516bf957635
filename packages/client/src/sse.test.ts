import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseSse, type SseEvent } from './sse.js';

const enc = new TextEncoder();

async function* chunks(parts: Uint8Array[]): AsyncGenerator<Uint8Array> {
  for (const p of parts) yield p;
}

async function collect(parts: Uint8Array[]): Promise<SseEvent[]> {
  const out: SseEvent[] = [];
  for await (const e of parseSse(chunks(parts))) out.push(e);
  return out;
}

/** Cuts `bytes` at the given offsets (anywhere: inside a CRLF, inside a UTF-8 sequence). */
function cut(bytes: Uint8Array, at: number[]): Uint8Array[] {
  const points = [...new Set(at.map((a) => a % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let prev = 0;
  for (const p of [...points, bytes.length]) {
    out.push(bytes.subarray(prev, p));
    prev = p;
  }
  return out;
}

describe('parseSse', () => {
  it('follows the WHATWG field rules: event, multi-line data, id, comments, a missing space, a field without a colon', async () => {
    const text = ': comment\nevent: reset\nid: 7\ndata: {"a":\ndata:1}\n\ndata\n\nevent: change\n\nretry: 1000\ndata: x\n\n';
    expect(await collect([enc.encode(text)])).toEqual([
      { event: 'reset', data: '{"a":\n1}', id: '7' },
      // `data` alone is a data line with an empty value; the id carries over (last event ID).
      { event: 'message', data: '', id: '7' },
      // An event with no data is not dispatched, and its name does not leak into the next one.
      { event: 'message', data: 'x', id: '7' },
    ]);
  });

  it('gives the same events whatever the line endings and wherever the chunks are cut', async () => {
    const field = fc.string({ unit: 'grapheme', maxLength: 12 }).filter((s) => !/[\r\n]/.test(s));
    const ev = fc.record({ event: fc.constantFrom('reset', 'change', 'ping'), data: fc.array(field, { minLength: 1, maxLength: 3 }) });
    await fc.assert(
      fc.asyncProperty(fc.array(ev, { maxLength: 6 }), fc.constantFrom('\n', '\r', '\r\n'), fc.array(fc.nat(), { maxLength: 20 }), async (events, eol, at) => {
        const text = events.map((e) => `event: ${e.event}${eol}${e.data.map((d) => `data: ${d}${eol}`).join('')}${eol}`).join('');
        const parsed = await collect(cut(enc.encode(text), at));
        expect(parsed).toEqual(events.map((e) => ({ event: e.event, data: e.data.join('\n') })));
      }),
      { numRuns: 300 },
    );
  });

  it('parses a multi-megabyte event fed in thousands of small chunks in linear time', async () => {
    // A `reset` of 8 MB in 1 KiB chunks: a parser that rescans or re-flattens its buffer per
    // chunk does ~8,000 passes over megabytes (minutes); a linear one takes milliseconds. The
    // bound is generous on purpose (a shared CI machine) and still far below quadratic.
    const payload = JSON.stringify({ index: 1, instances: Array.from({ length: 40_000 }, (_, k) => ({ id: `svc-${k}`, address: '10.0.0.1', port: k, meta: { é: 'ü'.repeat(100) } })) });
    const bytes = enc.encode(`event: reset\r\nid: 1\r\ndata: ${payload}\r\n\r\nevent: change\r\ndata: {}\r\n\r\n`);
    expect(bytes.length).toBeGreaterThan(8_000_000);
    const parts: Uint8Array[] = [];
    for (let i = 0; i < bytes.length; i += 1021) parts.push(bytes.subarray(i, i + 1021));
    const t0 = performance.now();
    const events = await collect(parts);
    const ms = performance.now() - t0;
    expect(events).toHaveLength(2);
    expect(events[0]!.event).toBe('reset');
    expect(events[0]!.data).toBe(payload);
    expect(events[1]).toEqual({ event: 'change', data: '{}', id: '1' });
    expect(ms).toBeLessThan(5_000);
  });
});
