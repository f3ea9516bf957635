import type { BulkSender } from './sse-bulk-send.js';
import { SseFrame, type SseStream } from './sse-frame.js';

/** A client that stops reading is cut loose rather than buffered without bound; it resumes with Last-Event-ID. */
export const MAX_BUFFERED = 8 * 1024 * 1024;

interface Member {
  readonly out: SseStream;
  /** Frames of the group's current turn that this stream's own first frames already held. */
  skip: number;
}

/**
 * Streams that carry the same frames (one filter over one catalog). Whoever feeds the group
 * filters and encodes a change once for all its members, and each turn's frames reach every
 * member in one write: with 10,000 streams of one service, a change used to run 10,000 catalog
 * listeners (each filtering, each queueing) before the first byte went out.
 */
export class SseGroup {
  private readonly members = new Map<SseStream, Member>();
  private batch: SseFrame[] = [];

  constructor(
    private readonly fanout: SseFanout,
    /** Called when the last member leaves. */
    private readonly onEmpty: () => void,
  ) {}

  get size(): number {
    return this.members.size;
  }

  /**
   * Adds a stream (or re-adds it) after its own first frames were written: frames queued earlier
   * in this turn are already in those, so it gets only what is pushed from now on.
   */
  join(out: SseStream): void {
    this.members.set(out, { out, skip: this.batch.length });
  }

  leave(out: SseStream): void {
    if (this.members.delete(out) && this.members.size === 0) this.onEmpty();
  }

  /** Queues a frame for every member; written at the end of this event-loop turn. */
  push(frame: SseFrame): void {
    if (this.batch.length === 0) this.fanout.schedule(this);
    this.batch.push(frame);
  }

  /** Writes this turn's frames (by {@link SseFanout}). */
  flush(): void {
    const batch = this.batch;
    this.batch = [];
    if (batch.length === 0) return;
    // Several frames of one turn are joined once, and only if some stream takes them all.
    let joined: SseFrame | undefined;
    const whole = () => (batch.length === 1 ? batch[0]! : (joined ??= SseFrame.join(batch)));
    const direct = this.fanout.direct;
    for (const m of this.members.values()) {
      const { out, skip } = m;
      m.skip = 0;
      if (skip >= batch.length || out.closed) continue;
      if (out.buffered > MAX_BUFFERED) out.res.destroy();
      else if (skip > 0) out.writeAll(batch.slice(skip));
      else if (!direct?.add(out)) out.write(whole());
    }
    direct?.send(whole);
  }
}

/**
 * The streams of one flush that take the same frame by one {@link BulkSender} call: a C loop of
 * send(2), split over threads from 1,024 streams, where each `socket.write` costs a JS call,
 * Node's stream bookkeeping and libuv's.
 */
class DirectBatch {
  private streams: SseStream[] = [];
  private fds = new Int32Array(1024);
  private results = new Int32Array(1024);

  constructor(private readonly sender: BulkSender) {}

  /** Takes the stream if its socket can be written past Node now. */
  add(out: SseStream): boolean {
    const fd = out.directFd();
    if (fd < 0) return false;
    const n = this.streams.length;
    if (n === this.fds.length) {
      const grown = new Int32Array(n * 2);
      grown.set(this.fds);
      this.fds = grown;
      this.results = new Int32Array(n * 2);
    }
    this.fds[n] = fd;
    this.streams.push(out);
    return true;
  }

  send(frameOf: () => SseFrame): void {
    const streams = this.streams;
    if (streams.length === 0) return;
    this.streams = [];
    const frame = frameOf();
    const n = streams.length;
    this.sender.sendAll(this.fds.subarray(0, n), frame.chunk, this.results.subarray(0, n));
    for (let i = 0; i < n; i++) streams[i]!.sent(frame, this.results[i]!);
  }
}

/**
 * Writes the groups that have frames once per event-loop turn, after the turn's other work: the
 * writer whose change woke them is answered first, and the revisions of one group commit reach
 * each stream together.
 */
export class SseFanout {
  private dirty: SseGroup[] = [];
  private scheduled = false;
  /** Reused by every group's flush (flushes never overlap). */
  readonly direct: DirectBatch | undefined;

  /** `sender`: sends a frame to many streams in one call; without it, one `socket.write` each. */
  constructor(sender?: BulkSender) {
    this.direct = sender && new DirectBatch(sender);
  }

  group(onEmpty: () => void): SseGroup {
    return new SseGroup(this, onEmpty);
  }

  schedule(group: SseGroup): void {
    this.dirty.push(group);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(this.flush);
  }

  private readonly flush = (): void => {
    this.scheduled = false;
    const dirty = this.dirty;
    this.dirty = [];
    for (const g of dirty) g.flush();
  };
}
