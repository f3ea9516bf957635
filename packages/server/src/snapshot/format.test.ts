import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { decodeSnapshot, encodeSnapshot, type Snapshot } from './format.js';

const sample: Snapshot = {
  header: { magic: 'beacon-snapshot', version: 1, format: 'jsonl', backend: 'embedded', revision: 42, createdAt: '2026-12-05T00:00:00.000Z', leases: 1, keys: 2 },
  leases: [{ id: 9, ttlMs: 30_000 }],
  kvs: [
    { key: '/beacon/instances/a', value: '{"id":"a"}', lease: 9 },
    { key: '/beacon/kv/x', value: 'line one\nline two ✓', lease: 0 },
  ],
};

/** A file with these lines and a correct checksum: only the content check can refuse it. */
function signed(lines: unknown[]): Buffer {
  const body = lines.map((l) => JSON.stringify(l)).join('\n') + '\n';
  return Buffer.from(`${body}sha256 ${createHash('sha256').update(body).digest('hex')}\n`);
}

describe('snapshot format', () => {
  it('round-trips leases and keys, values with newlines and non-ASCII included', () => {
    expect(decodeSnapshot(encodeSnapshot(sample))).toEqual(sample);
  });

  it('catches a change to the header as well as to the records', () => {
    const file = encodeSnapshot(sample).toString('utf8');
    expect(() => decodeSnapshot(Buffer.from(file.replace('"revision":42', '"revision":43')))).toThrow(/checksum does not match/);
    expect(() => decodeSnapshot(Buffer.from(file.replace('"ttlMs":30000', '"ttlMs":30001')))).toThrow(/checksum does not match/);
  });

  it('names what is wrong with a well-signed file whose contents do not hold together', () => {
    const h = sample.header;
    const cases: [unknown[], RegExp][] = [
      [[{ ...h, version: 2 }], /version 2 is not one this server reads/],
      [[{ ...h, keys: 3 }, { t: 'lease', id: 9, ttlMs: 1000 }, { t: 'kv', key: '/k', value: 'v', lease: 9 }], /promises 1 leases and 3 keys, the file holds 1 and 1/],
      [[{ ...h, leases: 0, keys: 1 }, { t: 'kv', key: '/k', value: 'v', lease: 5 }], /line 2: key \/k names lease 5/],
      [[{ ...h, leases: 0, keys: 2 }, { t: 'kv', key: '/k', value: 'v', lease: 0 }, { t: 'kv', key: '/k', value: 'w', lease: 0 }], /line 3: key \/k appears twice/],
      [[{ ...h, leases: 1, keys: 0 }, { t: 'lease', id: 1, ttlMs: -5 }], /line 2: a lease TTL must be a positive/],
      [[{ ...h, leases: 0, keys: 1 }, { t: 'kv', key: '/k', value: 7, lease: 0 }], /line 2: the value of \/k must be a string/],
      [[{ ...h, leases: 0, keys: 0 }, { t: 'other' }], /line 2: unknown record type "other"/],
    ];
    for (const [lines, message] of cases) expect(() => decodeSnapshot(signed(lines))).toThrow(message);
  });

  it('refuses with invalid_argument', () => {
    try {
      decodeSnapshot(Buffer.from('garbage'));
      expect.unreachable();
    } catch (err) {
      expect(err).toMatchObject({ code: 'invalid_argument', message: expect.stringMatching(/^not a valid Beacon snapshot: /) });
    }
  });
});
