import type { AddressInfo } from 'node:net';
import { loadAddon } from '../native-addon.js';
import type { UdpPeer } from './udp.js';

/** The batched-UDP addon (packages/server/native/udp.c), built by `npm run build` when a C compiler is there. */
interface UdpAddon {
  readonly BATCH: number;
  readonly IN_SLOT: number;
  readonly META: number;
  bind(host: string, port: number, ipv6: boolean): number;
  localPort(fd: number): number;
  start(fd: number, inBuf: Buffer, outBuf: Buffer, meta: Buffer, onBatch: (n: number) => void, outSlot: number): object;
  sendTo(fd: number, reply: Buffer, family: number, port: number, ip: Buffer): boolean;
  stop(reader: object): void;
  closeFd(fd: number): void;
}

/** The addon, or undefined when it was not built (no compiler) or does not load: callers use dgram. */
export function udpAddon(): UdpAddon | undefined {
  return loadAddon<UdpAddon>('udp');
}

/** Where a reply goes: a slot of the batch being answered, or an address kept for a later answer. */
export type BatchTarget = number | { family: number; port: number; ip: Buffer };

// Per packet in `meta`: length, family (4 or 6), port, 16 address bytes, reply length.
const M_LEN = 0;
const M_FAMILY = 1;
const M_PORT = 2;
const M_IP = 3;
const M_REPLY = 7;

/**
 * A UDP socket read and written in batches by the addon: one `recvmmsg`, one JS call and one
 * `sendmmsg` for up to BATCH packets, where dgram makes a system call, a callback, a 64 KiB
 * buffer and an address object per packet. Bound with SO_REUSEPORT, so every DNS process binds
 * its own socket on the port and the kernel spreads clients over them, each with its own queue.
 */
export class BatchedUdpSocket {
  private readonly fd: number;
  private reader: object | undefined;
  private closed = false;
  private readonly inBuf: Buffer;
  private readonly outBuf: Buffer;
  private readonly metaBuf: Buffer;
  private readonly meta: Int32Array;
  private readonly outSlot: number;
  readonly address: AddressInfo;

  /** Binds now (so a bind error surfaces here); `maxReply` is the largest UDP reply the server sends. */
  constructor(
    private readonly addon: UdpAddon,
    host: string,
    port: number,
    ipv6: boolean,
    maxReply: number,
  ) {
    this.fd = addon.bind(host, port, ipv6);
    this.address = { address: host, family: ipv6 ? 'IPv6' : 'IPv4', port: addon.localPort(this.fd) };
    this.outSlot = maxReply;
    this.inBuf = Buffer.alloc(addon.BATCH * addon.IN_SLOT);
    this.outBuf = Buffer.alloc(addon.BATCH * maxReply);
    this.metaBuf = Buffer.alloc(addon.BATCH * addon.META * 4);
    this.meta = new Int32Array(this.metaBuf.buffer, this.metaBuf.byteOffset, addon.BATCH * addon.META);
  }

  /** Starts reading; `answer` is called once per query, with the slot to pass back to `peer.send`. */
  start(answer: (msg: Buffer, to: BatchTarget) => void): void {
    const { IN_SLOT, META } = this.addon;
    this.reader = this.addon.start(
      this.fd,
      this.inBuf,
      this.outBuf,
      this.metaBuf,
      (n) => {
        for (let i = 0; i < n; i++) {
          const at = i * IN_SLOT;
          // A copy: the slot is reused by the next batch, and a delegated or forwarded query keeps its packet.
          answer(Buffer.from(this.inBuf.subarray(at, at + this.meta[i * META + M_LEN]!)), i);
        }
      },
      this.outSlot,
    );
  }

  readonly peer: UdpPeer<BatchTarget> = {
    send: (reply, to) => {
      if (typeof to === 'number' && reply.length <= this.outSlot) {
        reply.copy(this.outBuf, to * this.outSlot);
        this.meta[to * this.addon.META + M_REPLY] = reply.length;
        return;
      }
      const t = typeof to === 'number' ? this.kept(to) : to;
      this.addon.sendTo(this.fd, reply, t.family, t.port, t.ip);
    },
    address: (to) => {
      const t = typeof to === 'number' ? this.kept(to) : to;
      return t.family === 4 ? `${t.ip[0]}.${t.ip[1]}.${t.ip[2]}.${t.ip[3]}` : ipv6Text(t.ip);
    },
    keep: (to) => (typeof to === 'number' ? this.kept(to) : to),
  };

  private kept(slot: number): { family: number; port: number; ip: Buffer } {
    const m = slot * this.addon.META;
    const ip = Buffer.from(this.metaBuf.subarray((m + M_IP) * 4, (m + M_IP) * 4 + 16));
    return { family: this.meta[m + M_FAMILY]!, port: this.meta[m + M_PORT]!, ip };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.reader) this.addon.stop(this.reader);
    else this.addon.closeFd(this.fd);
  }
}

function ipv6Text(ip: Buffer): string {
  const parts: string[] = [];
  for (let i = 0; i < 16; i += 2) parts.push(ip.readUInt16BE(i).toString(16));
  return parts.join(':');
}
