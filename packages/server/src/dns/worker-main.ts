/**
 * Entry of a DNS worker process (see {@link UdpWorkers}): receives the server's UDP socket and
 * a replica of its services, answers from them, and hands node names back to the server.
 */
import type dgram from 'node:dgram';
import { seededRandom, systemClock } from '@beacon/core';
import type { DnsRequest, DnsResult, Plugin } from './chain.js';
import { DnsEngine, type DnsLogger } from './engine.js';
import { answeredByMain, parseName } from './names.js';
import { ReplicaCatalog } from './replica.js';
import { RCODE } from './wire.js';
import { bareAnswer } from './forward.js';
import { dgramPeer, skipResolver, udpAnswerer, udpRateLimiter } from './udp.js';
import { BatchedUdpSocket, udpAddon } from './native-udp.js';
import type { FromWorker, ToWorker } from './workers.js';

const MAX_DELEGATED = 1024;

const send = (m: FromWorker) => {
  if (process.connected) process.send!(m);
};
const logger: DnsLogger = {
  info: (obj, msg) => send({ t: 'log', level: 'info', msg: msg ?? '', obj: plain(obj) }),
  warn: (obj, msg) => send({ t: 'log', level: 'warn', msg: msg ?? '', obj: plain(obj) }),
  error: (obj, msg) => send({ t: 'log', level: 'error', msg: msg ?? '', obj: plain(obj) }),
};

const replica = new ReplicaCatalog();
const pending = new Map<number, (r: DnsResult) => void>();
let nextId = 0;
let engine: DnsEngine | undefined;
/** Stops reading UDP, then calls `done`; set once the worker reads its socket. */
let closeUdp: ((done: () => void) => void) | undefined;

function delegateToMain(domain: string, datacenter: string): Plugin {
  const domainLabels = domain.split('.');
  return (next) => (req: DnsRequest) => {
    if (!answeredByMain(parseName(req.labels(), domainLabels, datacenter))) return next(req);
    if (pending.size >= MAX_DELEGATED) return { kind: 'answer', answer: bareAnswer(RCODE.SERVFAIL) };
    const id = (nextId = (nextId + 1) % 2 ** 31);
    return new Promise<DnsResult>((resolve) => {
      pending.set(id, resolve);
      send({ t: 'delegate', id, raw: req.raw, transport: req.transport });
    });
  };
}

process.on('message', (m: ToWorker, handle: unknown) => {
  switch (m.t) {
    case 'init': {
      replica.apply(m.update);
      engine = new DnsEngine({
        catalog: replica,
        config: m.config,
        random: seededRandom(m.seed),
        clock: systemClock,
        serial: m.serial,
        logger,
        plugins: [delegateToMain(m.config.domain, m.config.datacenter)],
      });
      // Its own buckets: a client's responses are limited per process (docs/dns.md).
      const limiter = udpRateLimiter(m.config, systemClock);
      if (m.udp) {
        const addon = udpAddon();
        if (!addon) throw new Error('the server asked for batched UDP, but the addon does not load here');
        const b = new BatchedUdpSocket(addon, m.udp.host, m.udp.port, m.udp.ipv6, m.udp.maxReply);
        b.start(udpAnswerer(engine, limiter, b.peer));
        closeUdp = (done) => {
          b.close();
          done();
        };
      } else {
        const s = handle as dgram.Socket;
        if (!skipResolver(s)) logger.info({}, 'DNS worker: replies go through the resolver (Node keeps the socket state elsewhere)');
        let open = true;
        s.on('message', udpAnswerer(engine, limiter, dgramPeer(() => (open ? s : undefined))));
        s.on('error', (err) => logger.warn({ err }, 'DNS worker UDP socket error'));
        closeUdp = (done) => {
          open = false;
          s.close(done);
        };
      }
      send({ t: 'ready' });
      return;
    }
    case 'update':
      replica.apply(m.update);
      return;
    case 'counts':
      if (engine) send({ t: 'counts', id: m.id, counts: engine.counts.snapshot() });
      return;
    case 'answer': {
      const resolve = pending.get(m.id);
      pending.delete(m.id);
      resolve?.(m.bytes ? { kind: 'wire', bytes: Buffer.from(m.bytes.buffer, m.bytes.byteOffset, m.bytes.byteLength) } : { kind: 'drop' });
      return;
    }
    case 'close':
      stop();
      return;
  }
});

// The server went away: nothing left to answer for.
process.on('disconnect', () => process.exit(0));

function stop(): void {
  const close = closeUdp;
  closeUdp = undefined;
  const finish = () => {
    if (engine) send({ t: 'stats', stats: engine.stats(), counts: engine.counts.snapshot() });
    void engine?.close().finally(() => process.disconnect());
  };
  if (close) close(finish);
  else finish();
}

function plain(obj: unknown): unknown {
  if (obj && typeof obj === 'object' && 'err' in obj && (obj as { err: unknown }).err instanceof Error) {
    const err = (obj as { err: Error }).err;
    return { ...obj, err: { message: err.message, stack: err.stack } };
  }
  return obj;
}
