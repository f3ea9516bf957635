#!/usr/bin/env node
// Beacon for the DNS benchmark, in its own process: an in-memory server (store → catalog view →
// registry), the benchmark's services registered through the registry, and the DNS front end
// over that catalog. Prints `ready <port>` once it answers; stops on SIGTERM.
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { readFileSync } from 'node:fs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const { startServer } = await import(join(root, 'packages/server/dist/index.js'));
const { createDnsServer, parseDnsConfig } = await import(join(root, 'packages/server/dist/dns/index.js'));
const { systemClock, systemRandom } = await import(join(root, 'packages/core/dist/index.js'));

const { values } = parseArgs({
  options: { addr: { type: 'string' }, data: { type: 'string' }, processes: { type: 'string', default: '1' } },
});
const services = JSON.parse(readFileSync(values.data, 'utf8'));
const silent = { info() {}, warn() {}, error: (o, m) => console.error(m, o) };

const server = await startServer({ dev: true, httpAddr: '127.0.0.1:0', nodeName: 'bench' });
for (const s of services)
  for (const i of s.instances) await server.registry.register({ service: s.name, address: i.address, port: i.port, node: i.node });
const dns = createDnsServer({
  catalog: server.catalog,
  config: parseDnsConfig({ addr: values.addr, udpProcesses: Number(values.processes) }),
  random: systemRandom,
  clock: systemClock,
  logger: silent,
});
const { udp } = await dns.listen();
process.stdout.write(`ready ${udp.port}\n`);

const stop = async () => {
  await dns.close();
  process.stderr.write(`beacon dns stats ${JSON.stringify(dns.stats())}\n`);
  await server.close();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
