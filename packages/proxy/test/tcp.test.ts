import { connect, createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { proxyFor, register, serve, spawnServer, until, type RunningProcess } from './helpers.js';

let beacon: RunningProcess;
beforeAll(async () => {
  beacon = await spawnServer(['--dev']);
});
afterAll(async () => {
  await beacon?.stop();
});

/** Echoes what it read, prefixed with its name, once the client has half-closed; then closes its side. */
function echoServer(name: string) {
  return serve(
    createServer({ allowHalfOpen: true }, (s) => {
      const chunks: Buffer[] = [];
      s.on('data', (d: Buffer) => {
        chunks.push(d);
        if (String(d).includes('ping\n')) s.write(`${name}:pong\n`);
      });
      s.on('end', () => s.end(`${name}:${Buffer.concat(chunks).toString()}`));
    }),
  );
}

/** Sends `data`, half-closes, and collects everything until the other side closes. */
function halfCloseExchange(port: number, data: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    let got = '';
    s.on('data', (d) => (got += d));
    s.on('end', () => {
      s.end();
      resolve(got);
    });
    s.on('error', reject);
    s.write(data, () => s.end());
  });
}

describe('beacon proxy, L4', () => {
  it('pipes bytes both ways and respects half-close; an instance change keeps open connections', async () => {
    const a = await echoServer('a');
    const b = await echoServer('b');
    await register(beacon, 'echo', a.port);
    const p = await proxyFor(beacon, { listeners: [{ listen: '127.0.0.1:0', protocol: 'tcp', service: 'echo' }] });
    const port = p.proxy.listeners[0]!.port;
    try {
      // The echo answers only after the client's FIN: the half-close reached it, the answer came back.
      expect(await until(() => halfCloseExchange(port, 'hello over tcp'), (r) => r !== '')).toBe('a:hello over tcp');

      // A long-lived connection survives a new instance joining.
      const s = connect({ host: '127.0.0.1', port });
      const lines: string[] = [];
      s.on('data', (d) => lines.push(...String(d).trim().split('\n')));
      s.write('ping\n');
      await until(async () => lines.length, (n) => n === 1);
      await register(beacon, 'echo', b.port);
      await until(async () => p.proxy.snapshot().listeners[0]!.routes[0]!.subsets[0]!.instances.length, (n) => n === 2);
      s.write('ping\n');
      await until(async () => lines.length, (n) => n === 2);
      expect(lines).toEqual(['a:pong', 'a:pong']);
      s.destroy();

      // Megabytes each way, with a client that stops reading for a while: the instance's bytes come
      // through the proxy's one read buffer per connection, which must never be overwritten while a
      // write still points into it.
      const big = Buffer.alloc(4 * 1024 * 1024);
      // Printable ASCII (the echo server answers text), varying so a reused buffer would show.
      for (let i = 0; i < big.length; i++) big[i] = 0x20 + ((i * 7 + (i >> 13)) % 95);
      const echoed = await new Promise<Buffer>((resolve, reject) => {
        const c = connect({ host: '127.0.0.1', port, allowHalfOpen: true });
        const got: Buffer[] = [];
        c.once('data', () => {
          c.pause();
          setTimeout(() => c.resume(), 150);
        });
        c.on('data', (d: Buffer) => got.push(d));
        c.on('end', () => {
          c.end();
          resolve(Buffer.concat(got));
        });
        c.on('error', reject);
        c.write(big, () => c.end());
      });
      expect(echoed.subarray(0, 2).toString()).toMatch(/^[ab]:$/);
      expect(echoed.subarray(2).equals(big)).toBe(true);
    } finally {
      await p.close();
      await a.close();
      await b.close();
    }
  });
});
