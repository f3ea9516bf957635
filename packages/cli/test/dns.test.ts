import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Resolver } from 'node:dns/promises';
import { beacon, freePort, spawnServer } from './helpers.js';

let server: Awaited<ReturnType<typeof spawnServer>>;
let dnsPort = 0;
beforeAll(async () => {
  dnsPort = await freePort();
  server = await spawnServer(['--dev', '--dns-addr', `127.0.0.1:${dnsPort}`]);
});
afterAll(async () => {
  await server.stop();
});

describe('beacon server serves DNS next to HTTP', () => {
  it('answers A and SRV for instances registered through the CLI, and drops one in maintenance', async () => {
    const s = ['--server', server.url];
    await beacon([...s, 'register', '-s', 'web', '-a', '127.0.0.21', '-p', '8081']);
    await beacon([...s, 'register', '-s', 'web', '-a', '127.0.0.22', '-p', '8082']);
    const r = new Resolver({ timeout: 2000, tries: 1 });
    r.setServers([`127.0.0.1:${dnsPort}`]);
    expect((await r.resolve4('web.service.consul')).sort()).toEqual(['127.0.0.21', '127.0.0.22']);
    const srv = await r.resolveSrv('_web._tcp.service.consul');
    expect(srv.map((x) => x.port).sort()).toEqual([8081, 8082]);
    await beacon([...s, 'maintenance', 'web-127.0.0.22-8082', '-r', 'patching']);
    expect(await r.resolve4('web.service.consul')).toEqual(['127.0.0.21']);
    await expect(r.resolve4('nothing.service.consul')).rejects.toMatchObject({ code: 'ENOTFOUND' });
  });
});

describe('beacon server --datacenter', () => {
  it('names the datacenter in DNS and in the Consul API; --dns-datacenter still works', async () => {
    for (const flag of ['--datacenter', '--dns-datacenter']) {
      const port = await freePort();
      const s = await spawnServer(['--dev', '--dns-addr', `127.0.0.1:${port}`, flag, 'eu1']);
      try {
        await beacon(['--server', s.url, 'register', '-s', 'web', '-a', '127.0.0.31', '-p', '8080']);
        const r = new Resolver({ timeout: 2000, tries: 1 });
        r.setServers([`127.0.0.1:${port}`]);
        expect(await r.resolve4('web.service.eu1.consul')).toEqual(['127.0.0.31']);
        expect((await r.resolveSrv('web.service.consul'))[0]?.name).toBe('7f00001f.addr.eu1.consul');
        expect(await (await fetch(`${s.url}/v1/catalog/datacenters`)).json()).toEqual(['eu1']);
      } finally {
        await s.stop();
      }
    }
  });
});
