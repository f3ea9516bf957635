import { fork, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { errors, type Clock, type Random } from '@beacon/core';
import type { CatalogReader } from '../catalog/types.js';
import type { Transport } from './chain.js';
import type { DnsConfig } from './config.js';
import { addCounts, emptyCounts, type DnsCountsSnapshot } from './counts.js';
import type { DnsEngine, DnsLogger, DnsStats } from './engine.js';
import { slimService, snapshot, type ReplicaUpdate } from './replica.js';
import type { UdpShare } from './server.js';

/** Messages from the server process to a worker process. */
export type ToWorker =
  /** `udp`: bind an own socket on that port (SO_REUSEPORT); absent: the socket comes with the message. */
  | { t: 'init'; config: DnsConfig; serial: number; seed: number; update: ReplicaUpdate; udp?: Omit<Extract<UdpShare, { kind: 'reuseport' }>, 'kind'> }
  | { t: 'update'; update: ReplicaUpdate }
  | { t: 'answer'; id: number; bytes: Uint8Array | null }
  /** Asks for the worker's answer counts (a /metrics scrape). */
  | { t: 'counts'; id: number }
  | { t: 'close' };

/** Messages from a worker process to the server process. */
export type FromWorker =
  | { t: 'ready' }
  | { t: 'delegate'; id: number; raw: Uint8Array; transport: Transport }
  | { t: 'log'; level: 'info' | 'warn' | 'error'; msg: string; obj: unknown }
  | { t: 'counts'; id: number; counts: DnsCountsSnapshot }
  /** Sent once, when the worker stops. */
  | { t: 'stats'; stats: DnsStats; counts: DnsCountsSnapshot };

export interface UdpWorkersOptions {
  /** The server's UDP socket, or the port the workers bind their own sockets on. */
  share: UdpShare;
  config: DnsConfig;
  catalog: Pick<CatalogReader, 'index' | 'services' | 'service' | 'onChange'>;
  /** The server's own engine: answers what workers hand over (node names) and sets the SOA serial. */
  engine: DnsEngine;
  random: Random;
  clock: Clock;
  logger?: DnsLogger;
}

const START_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 3_000;
/** A scrape waits this long for a worker's counts, then uses the last it got: /metrics never hangs on a busy worker. */
const COUNTS_TIMEOUT_MS = 1_000;

/**
 * Extra processes answering UDP on the server's port. With the batched-UDP addon each binds its
 * own socket on the port (SO_REUSEPORT: the kernel spreads clients over the sockets, each with
 * its own queue). Without it: Node 20's dgram has no SO_REUSEPORT and a socket fd cannot be
 * shared between threads without being closed twice, but a dgram socket sent to a child
 * process arrives as its own descriptor (SCM_RIGHTS), and the kernel spreads the packets over
 * every process reading it. Each worker holds a replica of the services, fed from the catalog's
 * change feed, and hands node names (whose records do not travel) back to the server.
 */
export class UdpWorkers {
  private readonly children = new Set<ChildProcess>();
  private readonly finalStats: DnsStats[] = [];
  /** Counts of workers gone (stopped or crashed), so the totals never go backwards. */
  private readonly goneCounts = emptyCounts();
  /** The last counts each live worker reported. */
  private readonly lastCounts = new Map<ChildProcess, DnsCountsSnapshot>();
  private readonly countRequests = new Map<number, () => void>();
  private nextCountRequest = 0;
  private unsubscribe: (() => void) | undefined;

  constructor(private readonly opts: UdpWorkersOptions) {}

  async start(count: number): Promise<void> {
    const entry = fileURLToPath(new URL('./worker-main.js', import.meta.url));
    if (!existsSync(entry)) throw errors.invalid(`several DNS UDP processes need the built server (${entry} is missing): run npm run build`);
    const { catalog } = this.opts;
    this.unsubscribe = catalog.onChange((change) => {
      const update: ReplicaUpdate = change.reset
        ? snapshot(catalog)
        : { index: change.index, reset: false, services: [...change.services].map((name) => slimService(catalog.service(name))) };
      this.broadcast({ t: 'update', update });
    });
    try {
      await Promise.all(Array.from({ length: count }, () => this.spawn(entry)));
    } catch (err) {
      await this.close();
      throw err;
    }
  }

  private spawn(entry: string): Promise<void> {
    const { config, engine, random, logger } = this.opts;
    const child = fork(entry, [], { serialization: 'advanced', execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.children.add(child);
    const { share } = this.opts;
    const init: ToWorker = { t: 'init', config, serial: engine.serial, seed: Math.floor(random.next() * 2 ** 32), update: snapshot(this.opts.catalog) };
    if (share.kind === 'socket') child.send(init, share.socket);
    else child.send({ ...init, udp: { host: share.host, port: share.port, ipv6: share.ipv6, maxReply: share.maxReply } });
    return new Promise<void>((resolve, reject) => {
      const timer = this.opts.clock.setTimeout(() => reject(errors.unavailable('a DNS worker process did not start within 10 s')), START_TIMEOUT_MS);
      child.on('message', (m: FromWorker) => {
        switch (m.t) {
          case 'ready':
            timer.cancel();
            resolve();
            return;
          case 'delegate':
            void Promise.resolve(engine.handle(Buffer.from(m.raw.buffer, m.raw.byteOffset, m.raw.byteLength), m.transport)).then((bytes) =>
              this.send(child, { t: 'answer', id: m.id, bytes: bytes ?? null }),
            );
            return;
          case 'log':
            logger?.[m.level](m.obj, m.msg);
            return;
          case 'counts':
            this.lastCounts.set(child, m.counts);
            this.countRequests.get(m.id)?.();
            return;
          case 'stats':
            this.finalStats.push(m.stats);
            this.lastCounts.set(child, m.counts);
            return;
        }
      });
      child.once('exit', (code, signal) => {
        timer.cancel();
        const expected = !this.children.has(child);
        this.children.delete(child);
        const last = this.lastCounts.get(child);
        this.lastCounts.delete(child);
        if (last) addCounts(this.goneCounts, last);
        if (!expected) logger?.error({ code, signal }, 'DNS worker process exited; the server process keeps answering');
        reject(errors.unavailable(`DNS worker process exited (${signal ?? code})`));
      });
      child.on('error', (err) => logger?.warn({ err }, 'DNS worker process error'));
    });
  }

  private send(child: ChildProcess, m: ToWorker): void {
    if (child.connected) child.send(m, (err) => err && this.opts.logger?.warn({ err }, 'DNS worker message failed'));
  }

  private broadcast(m: ToWorker): void {
    for (const c of this.children) this.send(c, m);
  }

  get size(): number {
    return this.children.size;
  }

  /** The answer counts of every worker, live (asked now) and gone. */
  async counts(): Promise<DnsCountsSnapshot> {
    await Promise.all(
      [...this.children].map(
        (child) =>
          new Promise<void>((resolve) => {
            const id = (this.nextCountRequest = (this.nextCountRequest + 1) % 2 ** 31);
            const finish = () => {
              timer.cancel();
              this.countRequests.delete(id);
              resolve();
            };
            const timer = this.opts.clock.setTimeout(finish, COUNTS_TIMEOUT_MS);
            this.countRequests.set(id, finish);
            this.send(child, { t: 'counts', id });
          }),
      ),
    );
    const total = addCounts(emptyCounts(), this.goneCounts);
    for (const c of this.lastCounts.values()) addCounts(total, c);
    return total;
  }

  /** Counters the workers reported when they stopped. */
  stoppedStats(): DnsStats[] {
    return [...this.finalStats];
  }

  async close(): Promise<void> {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    const all = [...this.children];
    this.children.clear();
    await Promise.all(
      all.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.exitCode !== null || c.signalCode !== null) return resolve();
            const kill = this.opts.clock.setTimeout(() => c.kill('SIGKILL'), STOP_TIMEOUT_MS);
            c.once('exit', () => {
              kill.cancel();
              resolve();
            });
            if (c.connected) c.send({ t: 'close' } satisfies ToWorker);
            else c.kill('SIGTERM');
          }),
      ),
    );
  }
}
