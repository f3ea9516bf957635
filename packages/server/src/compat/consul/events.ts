import type { CancelSignal } from '../../util/cancel.js';
import { errors, type Clock, type Random } from '@beacon/core';
import { uuid } from '../uuid.js';
import { IndexWaiters } from '../../util/index-waiters.js';

export interface UserEvent {
  id: string;
  name: string;
  /** base64, or null when the event carries no payload. */
  payload: string | null;
  nodeFilter: string;
  serviceFilter: string;
  tagFilter: string;
  version: number;
  ltime: number;
}

const NAME_RE = /^[A-Za-z0-9_.:-]{1,128}$/;
const MAX_PAYLOAD = 100 * 1024;

/**
 * Consul's user events (`/v1/event/fire`, `/v1/event/list`): Consul gossips them and each agent
 * keeps the last 256; Beacon keeps the last `size` fired on this server, in memory. The index of
 * the list is the Lamport time of the newest event.
 */
export class UserEvents {
  private readonly ring: UserEvent[] = [];
  private ltime = 0;
  private readonly waiters: IndexWaiters;

  constructor(
    clock: Clock,
    private readonly random: Random,
    private readonly size = 256,
  ) {
    this.waiters = new IndexWaiters(clock);
  }

  get index(): number {
    return Math.max(1, this.ltime);
  }

  fire(input: { name: string; payload: Buffer | null; node?: string; service?: string; tag?: string }): UserEvent {
    if (!NAME_RE.test(input.name)) throw errors.invalid('Missing or invalid event name');
    if (input.payload && input.payload.length > MAX_PAYLOAD) throw errors.tooLarge(`payload exceeds ${MAX_PAYLOAD} bytes`);
    const e: UserEvent = {
      id: uuid(this.random),
      name: input.name,
      payload: input.payload && input.payload.length ? input.payload.toString('base64') : null,
      nodeFilter: input.node ?? '',
      serviceFilter: input.service ?? '',
      tagFilter: input.tag ?? '',
      version: 1,
      ltime: ++this.ltime,
    };
    this.ring.push(e);
    if (this.ring.length > this.size) this.ring.splice(0, this.ring.length - this.size);
    this.waiters.wake(this.ltime);
    return e;
  }

  list(name?: string): UserEvent[] {
    return name ? this.ring.filter((e) => e.name === name) : [...this.ring];
  }

  wait(minIndex: number, timeoutMs: number, signal?: CancelSignal): Promise<void> {
    return this.waiters.wait(this.index, minIndex, timeoutMs, signal);
  }

  close(): void {
    this.waiters.close();
  }
}
