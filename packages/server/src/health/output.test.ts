import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { capOutput, OutputBuffer } from './output.js';

describe('capOutput', () => {
  it('leaves short output alone', () => {
    expect(capOutput('hello', 10)).toBe('hello');
  });

  it('never splits a multi-byte character and never exceeds the cap (property)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 200 }), fc.integer({ min: 0, max: 300 }), (s, max) => {
        const out = capOutput(s, max);
        expect(Buffer.byteLength(out)).toBeLessThanOrEqual(max);
        expect(Buffer.from(s).subarray(0, Buffer.byteLength(out)).toString()).toBe(out);
        expect(out.includes('\uFFFD') && !s.includes('\uFFFD')).toBe(false);
      }),
    );
  });

  it('cuts before a character that would straddle the cap', () => {
    expect(capOutput('ab€', 4)).toBe('ab'); // € is 3 bytes
    expect(capOutput('ab€', 5)).toBe('ab€');
  });
});

describe('OutputBuffer', () => {
  it('keeps the first max bytes and counts the rest as dropped', () => {
    const b = new OutputBuffer(8);
    b.push('12345');
    expect(b.full).toBe(false);
    b.push(Buffer.from('67890'));
    b.push('more');
    expect(b.full).toBe(true);
    expect(b.text()).toBe('12345678');
    expect(b.dropped).toBe(6);
  });
});
