import { describe, expect, it } from 'vitest';
import { SseParser, type SseEvent } from './sse.js';

describe('SseParser', () => {
  it('joins data lines, keeps the id, skips comments, and survives chunks cut anywhere', () => {
    const text = 'retry: 1000\n\n: ping\n\nevent: reset\nid: 7\ndata: {"a":\ndata: 1}\n\r\nevent: change\ndata: x\n\n';
    for (let cut = 0; cut <= text.length; cut++) {
      const p = new SseParser();
      const got: SseEvent[] = [];
      p.push(text.slice(0, cut), (e) => got.push(e));
      p.push(text.slice(cut), (e) => got.push(e));
      expect(got).toEqual([
        { event: 'reset', data: '{"a":\n1}', id: '7' },
        { event: 'change', data: 'x' },
      ]);
    }
  });
});
