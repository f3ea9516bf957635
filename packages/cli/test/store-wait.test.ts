import { describe, expect, it } from 'vitest';
import { beacon, freePort } from './helpers.js';

/**
 * `beacon server --store etcd://…` with nothing listening there: the server waits `--store-wait`
 * for etcd (it used to exit 0 after about 2 s, silently, because every timer of the wait was
 * unref'd), then exits non-zero with one line naming the endpoints and what to check.
 */
describe('beacon server with etcd down', () => {
  it('waits --store-wait, then exits 1 with one line naming the endpoints', async () => {
    const [a, b] = [await freePort(), await freePort()];
    const started = Date.now();
    const r = await beacon(['server', '--dev', '--store', `etcd://127.0.0.1:${a},127.0.0.1:${b}`, '--store-wait', '2500ms', '--http-addr', '127.0.0.1:0', '--dns-addr', '127.0.0.1:0', '--log-level', 'warn']);
    const elapsed = Date.now() - started;
    expect(r.code).toBe(1);
    expect(elapsed).toBeGreaterThanOrEqual(2400);
    expect(elapsed).toBeLessThan(10_000);
    expect(r.stdout).toBe('');
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      new RegExp(`^beacon: unavailable: cannot reach etcd at 127\\.0\\.0\\.1:${a},127\\.0\\.0\\.1:${b} within 2500 ms \\(connect ECONNREFUSED 127\\.0\\.0\\.1:\\d+\\): check that etcd is running and that --store lists its client URLs`),
    );
  });

  it('refuses a --store-wait that is not a duration', async () => {
    const r = await beacon(['server', '--dev', '--store', 'etcd://127.0.0.1:1', '--store-wait', 'soon', '--http-addr', '127.0.0.1:0', '--dns-addr', '127.0.0.1:0']);
    // A usage error, refused where it is typed (before etcd is dialled), naming the flag.
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^beacon: option '--store-wait <duration>' argument 'soon' is invalid\. Expected a duration such as 500ms, 30s or 1m30s/);
  });
});
