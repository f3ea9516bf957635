/**
 * A loopback TCP proxy that can cut its traffic: the way to make etcd unreachable from one Beacon
 * server while the cluster itself stays up. `cut()` drops every connection and refuses new ones
 * until `restore()`.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

export interface TcpProxy {
  /** `127.0.0.1:port` to connect to instead of the target. */
  address: string;
  cut(): void;
  restore(): void;
  /**
   * Drops the connection that next receives data from the target, before passing it on: a
   * request that reached the target and whose answer is lost (an ambiguous write).
   */
  loseNextAnswer(): void;
  /** How many answers were lost that way. */
  readonly lostAnswers: number;
  close(): Promise<void>;
}

export async function startTcpProxy(target: string): Promise<TcpProxy> {
  const [host, port] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
  const sockets = new Set<Socket>();
  let cut = false;
  let loseNext = false;
  let lost = 0;
  const server: Server = createServer((client) => {
    if (cut) return void client.destroy();
    const upstream = connect(port, host);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.on('data', (chunk: Buffer) => {
      if (loseNext) {
        loseNext = false;
        lost++;
        client.destroy();
        upstream.destroy();
        return;
      }
      client.write(chunk);
    });
    upstream.on('end', () => client.end());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port: own } = server.address() as AddressInfo;
  return {
    address: `127.0.0.1:${own}`,
    cut() {
      cut = true;
      for (const s of sockets) s.destroy();
    },
    restore() {
      cut = false;
    },
    loseNextAnswer() {
      loseNext = true;
    },
    get lostAnswers() {
      return lost;
    },
    async close() {
      cut = true;
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
