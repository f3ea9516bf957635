import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '@beacon/core';
import { Downstream, type DownstreamHandler } from './downstream.js';

/** A loopback listener feeding a Downstream on a manual clock; the handler answers every request with 204. */
async function listener(clock: ManualClock) {
  const handler: DownstreamHandler = {
    request: (_req, res) => {
      res.start(204, 'No Content', []);
      res.end();
    },
    upgrade: (_req, socket) => socket.destroy(),
    refused: () => {},
  };
  const down = new Downstream(handler, { clock, draining: () => false });
  const server: Server = createServer({ allowHalfOpen: true }, (s) => down.accept(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as AddressInfo).port };
}

const open: Socket[] = [];
const servers: Server[] = [];
afterEach(() => {
  for (const s of open.splice(0)) s.destroy();
  for (const s of servers.splice(0)) s.close();
});

/** A client connection; `closed` resolves when the proxy closes it. */
async function client(port: number) {
  const s = connect({ host: '127.0.0.1', port });
  open.push(s);
  let text = '';
  s.on('data', (d) => (text += d));
  const closed = new Promise<void>((r) => s.once('close', () => r()));
  await new Promise<void>((r) => s.once('connect', () => r()));
  return { s, closed, text: () => text };
}

/** Lets loopback socket events arrive (the clock is manual; this waits for I/O, not for time to pass). */
const settle = () => new Promise((r) => setTimeout(r, 30));

describe('Downstream timeouts', () => {
  it('closes a keep-alive connection idle for 5 s, and one stuck mid-head after 60 s, not before', async () => {
    const clock = new ManualClock();
    const { server, port } = await listener(clock);
    servers.push(server);
    const idle = await client(port);
    idle.s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    const stuck = await client(port);
    stuck.s.write('GET / HTTP/1.1\r\nHost: x\r\nX-Half');
    await settle();
    expect(idle.text()).toMatch(/^HTTP\/1\.1 204 No Content\r\n\r\n$/);
    let idleClosed = false;
    let stuckClosed = false;
    void idle.closed.then(() => (idleClosed = true));
    void stuck.closed.then(() => (stuckClosed = true));
    for (let s = 0; s < 6; s++) clock.advance(1_000);
    await settle();
    expect(idleClosed).toBe(true);
    expect(stuckClosed).toBe(false);
    for (let s = 0; s < 55; s++) clock.advance(1_000);
    await settle();
    expect(stuckClosed).toBe(true);
  });
});
