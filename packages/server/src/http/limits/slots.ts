import { errors } from '@beacon/core';

export type SlotKind = 'watch streams' | 'blocking queries';

/**
 * Long-lived requests (SSE streams, parked blocking queries) held at once: at most `cap` in all
 * and `perClient` from one client, so one client cannot take the server's share for everyone.
 */
export class Slots {
  private total = 0;
  private readonly byClient = new Map<string, number>();
  constructor(
    readonly kind: SlotKind,
    readonly cap: number,
    /** 0: no per-client cap. */
    readonly perClient: number,
  ) {}

  /** Takes a slot for `client`, or throws `too_many_requests`; the returned function gives it back (once). */
  acquire(client: string): () => void {
    if (this.total >= this.cap) throw errors.tooMany(`too many ${this.kind} open (${this.total}); retry with backoff`);
    const mine = this.byClient.get(client) ?? 0;
    if (this.perClient > 0 && mine >= this.perClient)
      throw errors.tooMany(`too many ${this.kind} open from ${client} (${mine}, the per-client cap); retry with backoff`);
    this.total++;
    this.byClient.set(client, mine + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.total--;
      const n = (this.byClient.get(client) ?? 1) - 1;
      if (n <= 0) this.byClient.delete(client);
      else this.byClient.set(client, n);
    };
  }

  get open(): number {
    return this.total;
  }
}
