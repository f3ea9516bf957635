import dgram from 'node:dgram';
import { isIPv6 } from 'node:net';
import type { Clock, Random, Timer } from '@beacon/core';
import { emptySections, type Sections } from './records.js';
import type { Answer, DnsResult, Handler, Plugin } from './chain.js';
import { FLAG, HEADER_SIZE, RCODE } from './wire.js';
import type { DnsLogger } from './engine.js';

export interface ForwardOptions {
  recursor: { host: string; port: number };
  timeoutMs: number;
  clock: Clock;
  random: Random;
  /** Queries waiting on the recursor at once; beyond it, SERVFAIL at once. */
  maxInFlight?: number;
  logger?: DnsLogger;
}

interface Pending {
  question: Buffer;
  timer: Timer;
  resolve: (r: DnsResult) => void;
}

/** A reply of ours without records (SERVFAIL, REFUSED): never cached. */
export function bareAnswer(rcode: number): Answer {
  return { rcode, authoritative: false, validity: undefined, weights: [], build: (): Sections => emptySections() };
}

/** The end of the chain without a recursor: names outside the domain are refused. */
export const refuseHandler: Handler = () => ({ kind: 'answer', answer: bareAnswer(RCODE.REFUSED) });

/**
 * Forwards whatever reaches it (names outside the domain) to the recursor over UDP with a fresh
 * random ID, and relays the reply. No reply within the timeout, or too many waiting: SERVFAIL.
 * Replies are matched on the source, the ID and the question, so a forged packet must guess all three.
 */
export function forwardPlugin(opts: ForwardOptions): Plugin & { close(): Promise<void> } {
  const maxInFlight = opts.maxInFlight ?? 1024;
  const pending = new Map<number, Pending>();
  const { host, port } = opts.recursor;
  let socket: dgram.Socket | undefined;
  let closed = false;

  const settle = (id: number, r: DnsResult) => {
    const p = pending.get(id);
    if (!p) return;
    pending.delete(id);
    p.timer.cancel();
    p.resolve(r);
  };

  const open = (): dgram.Socket => {
    if (socket) return socket;
    const s = dgram.createSocket(isIPv6(host) ? 'udp6' : 'udp4');
    s.on('message', (msg, rinfo) => {
      if (rinfo.port !== port || msg.length < HEADER_SIZE || !(msg[2]! & 0x80)) return;
      const id = msg.readUInt16BE(0);
      const p = pending.get(id);
      if (!p || !sameQuestion(msg, p.question)) return;
      settle(id, { kind: 'wire', bytes: msg });
    });
    s.on('error', (err) => opts.logger?.warn({ err }, 'DNS recursor socket error'));
    s.unref();
    socket = s;
    return s;
  };

  const plugin: Plugin = () => (req) => {
    if (closed || pending.size >= maxInFlight) return { kind: 'answer', answer: bareAnswer(RCODE.SERVFAIL) };
    let id = Math.floor(opts.random.next() * 65536);
    for (let tries = 0; pending.has(id) && tries < 65536; tries++) id = (id + 1) & 0xffff;
    const out = Buffer.from(req.raw.subarray(0, req.raw.length));
    out.writeUInt16BE(id, 0);
    // Ask for recursion whatever the client said: that is why it is being forwarded.
    out[2] = out[2]! | (FLAG.RD >> 8);
    const question = Buffer.from(req.raw.subarray(HEADER_SIZE, req.query.questionEnd));
    return new Promise<DnsResult>((resolve) => {
      const timer = opts.clock.setTimeout(() => settle(id, { kind: 'answer', answer: bareAnswer(RCODE.SERVFAIL) }), opts.timeoutMs);
      pending.set(id, { question, timer, resolve });
      open().send(out, port, host, (err) => {
        if (!err) return;
        opts.logger?.warn({ err, recursor: `${host}:${port}` }, 'DNS forward failed');
        settle(id, { kind: 'answer', answer: bareAnswer(RCODE.SERVFAIL) });
      });
    });
  };

  return Object.assign(plugin, {
    async close() {
      closed = true;
      for (const id of [...pending.keys()]) settle(id, { kind: 'answer', answer: bareAnswer(RCODE.SERVFAIL) });
      const s = socket;
      socket = undefined;
      if (s) await new Promise<void>((r) => s.close(() => r()));
    },
  });
}

/** The reply's question equals ours, ignoring ASCII case. */
function sameQuestion(msg: Buffer, question: Buffer): boolean {
  if (msg.length < HEADER_SIZE + question.length || msg.readUInt16BE(4) !== 1) return false;
  for (let i = 0; i < question.length; i++) {
    let a = msg[HEADER_SIZE + i]!;
    let b = question[i]!;
    if (a >= 0x41 && a <= 0x5a) a += 0x20;
    if (b >= 0x41 && b <= 0x5a) b += 0x20;
    if (a !== b) return false;
  }
  return true;
}
