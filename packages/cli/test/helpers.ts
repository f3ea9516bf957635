import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

export const BIN = fileURLToPath(new URL('../bin/beacon.js', import.meta.url));

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

/** Runs the built CLI to completion. */
export function beacon(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, timeout: 15_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

export interface RunningProcess {
  proc: ChildProcess;
  url: string;
  /** What it wrote to stderr so far. */
  stderr(): string;
  /** What it wrote to stdout (its log) so far. */
  stdout(): string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** SIGKILL to it (and to its process group when started with `group`). */
  killGroup(): void;
}

/** Starts `beacon server` as a real process and waits until it answers. */
export async function spawnServer(args: string[]): Promise<RunningProcess> {
  const port = await freePort();
  return startServing(process.execPath, [BIN, 'server', '--http-addr', `127.0.0.1:${port}`, '--dns-addr', '127.0.0.1:0', '--log-level', 'warn', ...args], `http://127.0.0.1:${port}`);
}

/** Runs `file args` (a server however started) and waits until `url` answers /api/v1/status; fails if it exits first. */
export async function startServing(
  file: string,
  args: string[],
  url: string,
  opts: { cwd?: string; group?: boolean; init?: RequestInit } = {},
  env: Record<string, string> = {},
): Promise<RunningProcess> {
  // `group`: its own process group, so `killGroup` also reaches children it may leave behind.
  const proc = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env }, ...(opts.cwd ? { cwd: opts.cwd } : {}), detached: !!opts.group });
  let stderr = '';
  proc.stderr!.on('data', (d) => (stderr += d));
  let stdout = '';
  proc.stdout!.on('data', (d) => (stdout += d));
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  const killGroup = () => {
    try {
      if (opts.group) process.kill(-proc.pid!, 'SIGKILL');
      else proc.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  };
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (proc.exitCode !== null) {
      killGroup();
      throw new Error(`server exited (${proc.exitCode}) without serving: ${stderr}`);
    }
    try {
      // `init`: what reaching it takes (an https:// server's CA and client certificate, as a dispatcher).
      const res = await fetch(`${url}/api/v1/status`, opts.init);
      if (res.ok) break;
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline) {
      killGroup();
      throw new Error(`server did not start: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    proc,
    url,
    stderr: () => stderr,
    stdout: () => stdout,
    killGroup,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
  };
}
