/**
 * A real etcd cluster for tests and benchmarks: N members on free loopback ports, data in a temp
 * directory (tmpfs when there is one, so fsync does not dominate on a shared machine), stopped
 * and removed by `stop()`. One member can be SIGKILLed and restarted to test failover.
 *
 * Timing flags: the heartbeat is raised from etcd's 100 ms to 200 ms so that a busy 2-core
 * machine does not trigger "failed to send out heartbeat on time" and spurious elections; the
 * election timeout stays at 1000 ms because etcd's minimum lease TTL is 1.5 × the election
 * timeout rounded up to whole seconds (1000 ms → 2 s, the contract suite's shortest lease) and
 * because it bounds the failover pause after a leader dies.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, openSync, closeSync, rmSync, accessSync, constants } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface EtcdClusterOptions {
  members?: number;
  heartbeatMs?: number;
  electionMs?: number;
  /** Milliseconds to wait for the cluster to elect a leader. Default 30 s. */
  startTimeoutMs?: number;
}

export interface EtcdMember {
  name: string;
  clientUrl: string;
  peerUrl: string;
  /** The running process; undefined while killed. */
  proc: ChildProcess | undefined;
}

export interface EtcdCluster {
  /** `127.0.0.1:port` of every member, for the store's `endpoints`. */
  endpoints: string[];
  members: EtcdMember[];
  dir: string;
  /** Index of the current leader (asks every live member). */
  leader(): Promise<number>;
  /** SIGKILLs member `i` and waits for the process to exit. */
  kill(i: number): Promise<void>;
  /** Starts member `i` again on the same ports and data (after `kill`). */
  restart(i: number): Promise<void>;
  /** Waits until every live member reports a healthy cluster. */
  waitHealthy(timeoutMs?: number): Promise<void>;
  /** Stops every member and removes the data. Safe to call twice. */
  stop(): Promise<void>;
}

/** Why etcd tests cannot run here, or undefined when they can. */
export function etcdUnavailableReason(): string | undefined {
  const r = spawnSync('etcd', ['--version'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) return 'no `etcd` binary on PATH (install the Debian package etcd-server)';
  return undefined;
}

const running = new Set<ChildProcess>();
let exitHookInstalled = false;

export async function startEtcdCluster(opts: EtcdClusterOptions = {}): Promise<EtcdCluster> {
  const n = opts.members ?? 3;
  const heartbeat = opts.heartbeatMs ?? 200;
  const election = opts.electionMs ?? 1000;
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    // A crashed test run must not leave etcd processes behind.
    process.on('exit', () => {
      for (const p of running) p.kill('SIGKILL');
    });
  }
  const base = writableDir('/dev/shm') ? '/dev/shm' : tmpdir();
  const dir = mkdtempSync(join(base, 'beacon-etcd-'));
  const ports = await freePorts(2 * n);
  const members: EtcdMember[] = Array.from({ length: n }, (_, i) => ({
    name: `m${i + 1}`,
    clientUrl: `http://127.0.0.1:${ports[2 * i]}`,
    peerUrl: `http://127.0.0.1:${ports[2 * i + 1]}`,
    proc: undefined,
  }));
  const initialCluster = members.map((m) => `${m.name}=${m.peerUrl}`).join(',');
  const token = `beacon-${Date.now().toString(36)}`;

  function launch(i: number): void {
    const m = members[i]!;
    const dataDir = join(dir, m.name);
    const fresh = !existsSync(dataDir);
    mkdirSync(dataDir, { recursive: true });
    const log = openSync(join(dir, `${m.name}.log`), 'a');
    const args = [
      '--name', m.name,
      '--data-dir', dataDir,
      '--listen-client-urls', m.clientUrl,
      '--advertise-client-urls', m.clientUrl,
      '--listen-peer-urls', m.peerUrl,
      '--initial-advertise-peer-urls', m.peerUrl,
      '--initial-cluster', initialCluster,
      '--initial-cluster-state', fresh ? 'new' : 'existing',
      '--initial-cluster-token', token,
      '--heartbeat-interval', String(heartbeat),
      '--election-timeout', String(election),
      '--logger', 'zap',
      '--log-level', 'warn',
    ];
    const proc = spawn('etcd', args, { stdio: ['ignore', log, log] });
    closeSync(log);
    running.add(proc);
    proc.once('exit', () => running.delete(proc));
    m.proc = proc;
  }

  async function memberStatus(m: EtcdMember): Promise<{ memberId: string; leader: string } | undefined> {
    try {
      const res = await fetch(`${m.clientUrl}/v3/maintenance/status`, { method: 'POST', body: '{}', signal: AbortSignal.timeout(1000) });
      if (!res.ok) return undefined;
      const body = (await res.json()) as { header?: { member_id?: string }; leader?: string };
      if (!body.header?.member_id || !body.leader || body.leader === '0') return undefined;
      return { memberId: body.header.member_id, leader: body.leader };
    } catch {
      return undefined;
    }
  }

  async function healthy(m: EtcdMember): Promise<boolean> {
    try {
      const res = await fetch(`${m.clientUrl}/health`, { signal: AbortSignal.timeout(1000) });
      return res.ok && ((await res.json()) as { health?: string }).health === 'true';
    } catch {
      return false;
    }
  }

  const cluster: EtcdCluster = {
    endpoints: members.map((m) => m.clientUrl.replace('http://', '')),
    members,
    dir,
    async leader() {
      for (let attempt = 0; attempt < 50; attempt++) {
        const statuses = await Promise.all(members.map((m) => (m.proc ? memberStatus(m) : Promise.resolve(undefined))));
        const leaderId = statuses.find((s) => s)?.leader;
        const i = statuses.findIndex((s) => s && s.memberId === leaderId);
        if (i >= 0) return i;
        await sleep(200);
      }
      throw new Error('etcd cluster has no leader');
    },
    async kill(i) {
      const p = members[i]!.proc;
      if (!p) return;
      members[i]!.proc = undefined;
      if (p.exitCode !== null || p.signalCode !== null) return;
      const exited = new Promise<void>((r) => p.once('exit', () => r()));
      p.kill('SIGKILL');
      await exited;
    },
    async restart(i) {
      if (members[i]!.proc) return;
      launch(i);
      await cluster.waitHealthy();
    },
    async waitHealthy(timeoutMs = opts.startTimeoutMs ?? 30_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const live = members.filter((m) => m.proc);
        const dead = live.find((m) => m.proc!.exitCode !== null);
        if (dead) throw new Error(`etcd member ${dead.name} exited (code ${dead.proc!.exitCode}); see ${join(dir, `${dead.name}.log`)}`);
        const ok = await Promise.all(live.map(healthy));
        if (ok.every(Boolean)) return;
        if (Date.now() > deadline) throw new Error(`etcd cluster not healthy within ${timeoutMs} ms; logs in ${dir}`);
        await sleep(100);
      }
    },
    async stop() {
      await Promise.all(
        members.map(async (m) => {
          const p = m.proc;
          m.proc = undefined;
          if (!p || p.exitCode !== null || p.signalCode !== null) return;
          const exited = new Promise<void>((r) => p.once('exit', () => r()));
          p.kill('SIGTERM');
          const t = setTimeout(() => p.kill('SIGKILL'), 3000);
          await exited;
          clearTimeout(t);
        }),
      );
      rmSync(dir, { recursive: true, force: true });
    },
  };

  for (let i = 0; i < n; i++) launch(i);
  try {
    await cluster.waitHealthy();
  } catch (err) {
    await cluster.stop().catch(() => undefined);
    throw err;
  }
  return cluster;
}

/** Free loopback ports (bound then released; a tiny race, acceptable in tests). */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<import('node:net').Server>((resolve, reject) => {
          const s = createServer();
          s.once('error', reject);
          s.listen(0, '127.0.0.1', () => resolve(s));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as import('node:net').AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  return ports;
}

function writableDir(d: string): boolean {
  try {
    accessSync(d, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
