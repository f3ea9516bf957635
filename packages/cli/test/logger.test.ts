import { describe, expect, it } from 'vitest';
import { defaultLogFormat, prettyLine } from '../src/logger.js';

describe('the pretty log format', () => {
  it('puts time, level and message first, then the fields as key=value on the same line', () => {
    const line = JSON.stringify({ level: 40, time: Date.UTC(2026, 0, 2, 3, 4, 5, 6), svc: 'beacon', msg: 'lease expired', instance: 'web-1', ttlMs: 10000, tags: ['a'], why: 'no heartbeat' });
    expect(prettyLine(line)).toBe('2026-01-02T03:04:05.006Z WARN  lease expired instance=web-1 ttlMs=10000 tags=["a"] why="no heartbeat"\n');
  });

  it("shows an error by its message (the stack stays in the JSON format) and keeps a line that is not JSON", () => {
    const line = JSON.stringify({ level: 50, time: 0, msg: 'catalog watch failed', err: { type: 'Error', message: 'connect ECONNREFUSED 127.0.0.1:2379', stack: 'Error: …\n    at x' } });
    expect(prettyLine(line)).toBe('1970-01-01T00:00:00.000Z ERROR catalog watch failed err="connect ECONNREFUSED 127.0.0.1:2379"\n');
    expect(prettyLine('not json\n')).toBe('not json\n');
  });

  it('is the default on a terminal only', () => {
    expect(defaultLogFormat({ isTTY: true })).toBe('pretty');
    expect(defaultLogFormat({})).toBe('json');
  });
});
