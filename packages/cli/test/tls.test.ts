import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from 'undici';
import { Etcd3 } from 'etcd3';
import { createClient } from '@beacon/client';
import { BIN, beacon, freePort, startServing, type RunningProcess } from './helpers.js';
import { makePki, opensslMissing, pem, type TestPki } from './tls-certs.js';
import { etcdUnavailableReason } from '../../server/test/etcd-cluster.js';

const missing = opensslMissing();
if (missing) console.warn(`skipping the TLS tests: ${missing}`);

/** `beacon server` over HTTPS on a free port; `args` add to the TLS flags. */
async function httpsServer(pki: TestPki, args: string[], client: { cert?: boolean } = {}): Promise<RunningProcess & { dispatcher: Agent }> {
  const port = await freePort();
  const dispatcher = new Agent({ connect: { ca: pem(pki.ca), ...(client.cert ? { cert: pem(pki.clientCert), key: pem(pki.clientKey) } : {}) } });
  const flags = ['server', '--dev', '--http-addr', `127.0.0.1:${port}`, '--log-level', 'warn', '--tls-cert', pki.serverCert, '--tls-key', pki.serverKey, ...args];
  const proc = await startServing(process.execPath, [BIN, ...flags], `https://127.0.0.1:${port}`, { init: { dispatcher } as unknown as RequestInit });
  return Object.assign(proc, { dispatcher });
}

describe.skipIf(missing)('TLS for the HTTP API', () => {
  let pki: TestPki;
  let server: RunningProcess & { dispatcher: Agent };
  let mtls: RunningProcess & { dispatcher: Agent };
  let dotPort: number;
  beforeAll(async () => {
    pki = makePki();
    dotPort = await freePort();
    [server, mtls] = await Promise.all([
      httpsServer(pki, ['--dns-addr', '127.0.0.1:0', '--dns-tls-addr', `127.0.0.1:${dotPort}`]),
      httpsServer(pki, ['--no-dns', '--tls-ca', pki.ca, '--verify-incoming'], { cert: true }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([server?.stop(), mtls?.stop()]);
    await Promise.all([server?.dispatcher.close(), mtls?.dispatcher.close()]);
    pki?.remove();
  });

  it('registers and lists instances over HTTPS with --ca, and the server names itself https://', async () => {
    const reg = await beacon(['--server', server.url, '--ca', pki.ca, '--json', 'register', '-s', 'web', '--address', '127.0.0.1', '--port', '8080']);
    expect(reg).toMatchObject({ code: 0, stderr: '' });
    // The CA from the environment, as CONSUL_CACERT is read by consul's CLI.
    const list = await beacon(['--server', server.url, '--json', 'instances', 'web'], { BEACON_CACERT: pki.ca });
    expect(list).toMatchObject({ code: 0, stderr: '' });
    expect(JSON.parse(list.stdout).instances).toMatchObject([{ service: 'web', address: '127.0.0.1', port: 8080 }]);
    const members = await beacon(['--server', server.url, '--ca', pki.ca, '--json', 'members']);
    expect(JSON.parse(members.stdout)).toMatchObject({ members: [{ httpUrl: server.url }] });
  });

  it('refuses a self-signed or unknown certificate without --ca, saying what to give', async () => {
    const r = await beacon(['--server', server.url, 'services']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY/);
    expect(r.stderr).toContain('give the CA certificate (--ca, BEACON_CACERT');
    const other = await beacon(['--server', server.url, '--ca', pki.otherCa, 'services']);
    expect(other.code).toBe(1);
    expect(other.stderr).toContain('not signed by a trusted CA');
  });

  it('fails a plaintext http:// client at once with a clear error, not a hang', async () => {
    const started = Date.now();
    const r = await beacon(['--server', server.url.replace('https://', 'http://'), 'services']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('if it serves TLS, use https://');
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('with --verify-incoming refuses a client without a certificate and serves one signed by the CA', async () => {
    const without = await beacon(['--server', mtls.url, '--ca', pki.ca, 'services']);
    expect(without.code).toBe(1);
    expect(without.stderr).toContain('if it verifies clients (--verify-incoming), give a certificate');
    const withCert = await beacon(['--server', mtls.url, '--ca', pki.ca, '--cert', pki.clientCert, '--key', pki.clientKey, '--json', 'services']);
    expect(withCert).toMatchObject({ code: 0, stderr: '' });
    expect(JSON.parse(withCert.stdout)).toEqual([]);
    // A certificate from another CA proves nothing to this server.
    const stranger = await beacon(['--server', mtls.url, '--ca', pki.ca, '--cert', pki.otherCa, '--key', pki.otherCa.replace(/\.pem$/, '.key'), 'services']);
    expect(stranger.code).toBe(1);
  });

  it('the SDK discovers over HTTPS with tls.ca (and a client certificate where verified)', async () => {
    const reg = await beacon(['--server', mtls.url, '--ca', pki.ca, '--cert', pki.clientCert, '--key', pki.clientKey, 'register', '-s', 'api', '--address', '127.0.0.1', '--port', '9090']);
    expect(reg).toMatchObject({ code: 0 });
    const client = createClient({ servers: [mtls.url], tls: { ca: pem(pki.ca), cert: pem(pki.clientCert), key: pem(pki.clientKey) } });
    try {
      const view = client.discover('api');
      await view.ready();
      expect(view.instances().map((i) => i.port)).toEqual([9090]);
    } finally {
      await client.close();
    }
  });

  it('the agent registers its definitions with an https:// server that verifies clients', async () => {
    const dir = join(pki.dir, 'agent.d');
    mkdirSync(dir);
    writeFileSync(join(dir, 'db.json'), JSON.stringify({ service: { name: 'db', port: 5432 } }));
    const tls = ['--ca', pki.ca, '--cert', pki.clientCert, '--key', pki.clientKey];
    const agent = spawn(process.execPath, [BIN, 'agent', '--config-dir', dir, '--server', mtls.url, '--drain-grace', '0s', '--log-level', 'warn', ...tls], { stdio: 'ignore' });
    const exited = new Promise((r) => agent.once('exit', r));
    try {
      let found: unknown[] = [];
      for (let k = 0; k < 100 && !found.length; k++) {
        const r = await beacon(['--server', mtls.url, ...tls, '--json', 'instances', 'db']);
        found = r.code === 0 ? (JSON.parse(r.stdout) as { instances: unknown[] }).instances : [];
        if (!found.length) await new Promise((res) => setTimeout(res, 100));
      }
      expect(found).toMatchObject([{ service: 'db', port: 5432, source: 'agent' }]);
    } finally {
      agent.kill('SIGTERM');
      await exited;
    }
  });

  it('answers DNS over TLS with the server certificate; a plain TCP query to that port gets nothing', async () => {
    const reg = await beacon(['--server', server.url, '--ca', pki.ca, 'register', '-s', 'dot', '--address', '127.0.0.1', '--port', '7070']);
    expect(reg).toMatchObject({ code: 0 });
    const dig = (...args: string[]) => promisify(execFile)('dig', ['@127.0.0.1', '-p', String(dotPort), '+tries=1', '+timeout=2', ...args]).catch((e: { stdout: string; code: number }) => e);
    const answer = await dig('+tls', `+tls-ca=${pki.ca}`, 'dot.service.consul', 'SRV', '+short');
    expect(answer.stdout.trim()).toMatch(/^1 1 7070 \S+\.addr\.dc1\.consul\.$/);
    const untrusted = await dig('+tls', `+tls-ca=${pki.otherCa}`, 'dot.service.consul', 'SRV', '+short');
    expect(untrusted.stdout).toMatch(/certificate verification .*failed/);
    expect(untrusted.stdout).not.toContain('7070');
    const plain = await dig('+tcp', 'dot.service.consul', 'SRV', '+short');
    expect(plain.stdout).not.toContain('7070');
  });

  it('refuses half a TLS setting before binding anything', async () => {
    const r = await beacon(['server', '--dev', '--no-dns', '--http-addr', '127.0.0.1:0', '--tls-cert', pki.serverCert]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--tls-cert and --tls-key go together');
    const noCa = await beacon(['server', '--dev', '--no-dns', '--http-addr', '127.0.0.1:0', '--tls-cert', pki.serverCert, '--tls-key', pki.serverKey, '--verify-incoming']);
    expect(noCa.stderr).toContain('--verify-incoming needs --tls-ca');
    const plain = await beacon(['server', '--dev', '--no-dns', '--http-addr', 'https://127.0.0.1:0']);
    expect(plain.code).toBe(2);
    expect(plain.stderr).toContain('is https:// but no --tls-cert and --tls-key are given');
    const dotWithoutCert = await beacon(['server', '--dev', '--http-addr', '127.0.0.1:0', '--dns-tls-addr', '127.0.0.1:0']);
    expect(dotWithoutCert.stderr).toContain('--dns-tls-addr needs --tls-cert and --tls-key');
    const notPem = await beacon(['--ca', BIN, 'services']);
    expect(notPem.code).toBe(2);
    expect(notPem.stderr).toContain('is not a PEM file');
  });
});

/** One etcd member serving clients over TLS only, verifying client certificates against the test CA. */
async function tlsEtcd(pki: TestPki): Promise<{ url: string; stop(): Promise<void> }> {
  const [client, peer] = [await freePort(), await freePort()];
  const dataDir = mkdtempSync(join(pki.dir, 'etcd-'));
  const proc = spawn(
    'etcd',
    [
      '--name', 'tls1', '--data-dir', dataDir,
      '--listen-client-urls', `https://127.0.0.1:${client}`, '--advertise-client-urls', `https://127.0.0.1:${client}`,
      '--listen-peer-urls', `http://127.0.0.1:${peer}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${peer}`,
      '--initial-cluster', `tls1=http://127.0.0.1:${peer}`,
      '--cert-file', pki.serverCert, '--key-file', pki.serverKey, '--client-cert-auth', '--trusted-ca-file', pki.ca,
    ],
    { stdio: 'ignore' },
  );
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  const etcd = new Etcd3({ hosts: `https://127.0.0.1:${client}`, credentials: { rootCertificate: pem(pki.ca), certChain: pem(pki.clientCert), privateKey: pem(pki.clientKey) } });
  try {
    for (let k = 0; ; k++) {
      try {
        await etcd.put('probe').value('1');
        break;
      } catch (err) {
        if (k > 100) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    // etcd's own users: root with a password, and auth on.
    await etcd.user('root').create('root-secret');
    await etcd.user('root').addRole('root');
    await etcd.auth.authEnable();
  } finally {
    etcd.close();
  }
  return {
    url: `etcds://127.0.0.1:${client}`,
    async stop() {
      proc.kill('SIGKILL');
      await exited;
    },
  };
}

const etcdMissing = missing ?? etcdUnavailableReason();
describe.skipIf(etcdMissing)('TLS to etcd (etcds://)', () => {
  let pki: TestPki;
  let etcd: Awaited<ReturnType<typeof tlsEtcd>>;
  beforeAll(async () => {
    pki = makePki();
    etcd = await tlsEtcd(pki);
  });
  afterAll(async () => {
    await etcd?.stop();
    pki?.remove();
  });

  const storeFlags = (over: { url?: string; ca?: string; password?: string } = {}) => ({
    args: ['server', '--dev', '--no-dns', '--http-addr', '127.0.0.1:0', '--store', over.url ?? etcd.url, '--store-wait', '1s', '--store-ca', over.ca ?? pki.ca, '--store-cert', pki.clientCert, '--store-key', pki.clientKey, '--store-user', 'root'],
    env: { BEACON_STORE_PASSWORD: over.password ?? 'root-secret' },
  });

  it('a server with the CA, a client certificate and the etcd password serves; wrong ones are refused', async () => {
    const port = await freePort();
    const ok = storeFlags();
    const args = ok.args.map((a) => (a === '127.0.0.1:0' ? `127.0.0.1:${port}` : a));
    const server = await startServing(process.execPath, [BIN, ...args, '--log-level', 'warn'], `http://127.0.0.1:${port}`, {}, ok.env);
    try {
      const reg = await beacon(['--server', server.url, 'register', '-s', 'stored', '--address', '127.0.0.1', '--port', '6060']);
      expect(reg).toMatchObject({ code: 0 });
    } finally {
      await server.stop();
    }
    const wrongCa = storeFlags({ ca: pki.otherCa });
    const r1 = await beacon(wrongCa.args, wrongCa.env);
    expect(r1.code).toBe(1);
    expect(r1.stderr).toContain('cannot reach etcd');
    const plaintext = storeFlags({ url: etcd.url.replace('etcds://', 'etcd://') });
    const r2 = await beacon(plaintext.args, plaintext.env);
    expect(r2.code).toBe(2);
    expect(r2.stderr).toContain('need an etcds:// --store URL');
    const noTls = await beacon(['server', '--dev', '--no-dns', '--http-addr', '127.0.0.1:0', '--store', etcd.url.replace('etcds://', 'etcd://'), '--store-wait', '1s']);
    expect(noTls.code).toBe(1);
    expect(noTls.stderr).toContain('cannot reach etcd');
    const wrongPassword = storeFlags({ password: 'guess' });
    const r3 = await beacon(wrongPassword.args, wrongPassword.env);
    expect(r3.code).toBe(1);
    expect(r3.stderr).toMatch(/authentication failed|invalid user ID or password/i);
  });
});
