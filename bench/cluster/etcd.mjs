// A throwaway etcd cluster for the benchmark: N members on free loopback ports, data on tmpfs
// when there is one. Same flags as the tests' cluster (packages/server/test/etcd-cluster.ts):
// heartbeat 200 ms, election 1000 ms (keeps etcd's minimum lease TTL at 2 s).
import { spawn, spawnSync } from 'node:child_process';
import { accessSync, constants, mkdirSync, mkdtempSync, openSync, closeSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export function etcdMissing() {
  const r = spawnSync('etcd', ['--version'], { encoding: 'utf8' });
  return r.error || r.status !== 0 ? 'no `etcd` binary on PATH (Debian package etcd-server)' : undefined;
}

export async function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

export async function startEtcd(n = 3) {
  let base = tmpdir();
  try {
    accessSync('/dev/shm', constants.W_OK);
    base = '/dev/shm';
  } catch {}
  const dir = mkdtempSync(join(base, 'beacon-bench-etcd-'));
  const members = [];
  for (let i = 0; i < n; i++) members.push({ name: `m${i + 1}`, client: `http://127.0.0.1:${await freePort()}`, peer: `http://127.0.0.1:${await freePort()}` });
  const initial = members.map((m) => `${m.name}=${m.peer}`).join(',');
  const procs = members.map((m) => {
    mkdirSync(join(dir, m.name));
    const log = openSync(join(dir, `${m.name}.log`), 'a');
    const p = spawn('etcd', [
      '--name', m.name, '--data-dir', join(dir, m.name),
      '--listen-client-urls', m.client, '--advertise-client-urls', m.client,
      '--listen-peer-urls', m.peer, '--initial-advertise-peer-urls', m.peer,
      '--initial-cluster', initial, '--initial-cluster-state', 'new', '--initial-cluster-token', `bench-${process.pid}`,
      '--heartbeat-interval', '200', '--election-timeout', '1000', '--logger', 'zap', '--log-level', 'warn',
    ], { stdio: ['ignore', log, log] });
    closeSync(log);
    return p;
  });
  const stop = async (keepLogs = false) => {
    await Promise.all(procs.map((p) => (p.exitCode !== null || p.signalCode !== null ? undefined : new Promise((r) => (p.once('exit', r), p.kill('SIGTERM'))))));
    if (!keepLogs) rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 30_000;
  for (;;) {
    const ok = await Promise.all(
      members.map((m) =>
        fetch(`${m.client}/health`, { signal: AbortSignal.timeout(1000) })
          .then((r) => r.json())
          .then((b) => b.health === 'true', () => false),
      ),
    );
    if (ok.every(Boolean)) break;
    if (Date.now() > deadline || procs.some((p) => p.exitCode !== null)) {
      await stop(true);
      throw new Error(`etcd did not start; logs in ${dir}`);
    }
    await sleep(100);
  }
  return { endpoints: members.map((m) => m.client.slice('http://'.length)), pids: procs.map((p) => p.pid), dir, stop };
}
