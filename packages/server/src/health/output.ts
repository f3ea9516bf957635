import { LIMITS } from '@beacon/core';

/**
 * Cuts `s` to at most `max` UTF-8 bytes without splitting a character, so a capped output
 * never ends in a replacement character and never exceeds the cap.
 */
export function capOutput(s: string, max: number = LIMITS.checkOutput): string {
  if (s.length <= max / 4 || Buffer.byteLength(s) <= max) return s;
  const buf = Buffer.from(s);
  let end = max;
  // Step back over continuation bytes (10xxxxxx) to the start of the cut character.
  while (end > 0 && (buf[end]! & 0xc0) === 0x80) end--;
  return buf.subarray(0, end).toString('utf8');
}

/** Collects bytes up to a cap and drops the rest, counting what was dropped. */
export class OutputBuffer {
  private chunks: Buffer[] = [];
  private size = 0;
  dropped = 0;

  constructor(readonly max: number = LIMITS.checkOutput) {}

  /** Whether the buffer is full; readers may stop reading. */
  get full(): boolean {
    return this.size >= this.max;
  }

  push(chunk: Buffer | string): void {
    const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    const room = this.max - this.size;
    if (room <= 0) {
      this.dropped += b.length;
      return;
    }
    const take = b.length <= room ? b : b.subarray(0, room);
    this.chunks.push(take);
    this.size += take.length;
    this.dropped += b.length - take.length;
  }

  /** The collected bytes as text, never longer than `max` bytes. */
  text(): string {
    return capOutput(Buffer.concat(this.chunks, this.size).toString('utf8'), this.max);
  }
}
