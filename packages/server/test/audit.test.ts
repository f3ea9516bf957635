import { afterEach, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RunningServer } from '../src/server.js';
import { api, devServer, until } from './helpers.js';

const SECRET = 'f3c1e2d4-secret-never-logged';

const dirs: string[] = [];
const servers: RunningServer[] = [];
afterEach(async () => {
  while (servers.length) await servers.pop()!.close();
  while (dirs.length) rmSync(dirs.pop()!, { recursive: true, force: true });
});

function lines(path: string): Record<string, unknown>[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

async function auditedServer() {
  const dir = mkdtempSync(join(tmpdir(), 'beacon-audit-'));
  dirs.push(dir);
  const path = join(dir, 'audit.log');
  const server = await devServer({ auditLog: path });
  servers.push(server);
  return { server, path };
}

describe('audit log', () => {
  it('records writes on every API and refusals, each with who, from where, what and how it ended, and never a secret', async () => {
    const { server, path } = await auditedServer();
    const h = { 'x-consul-token': SECRET };
    expect((await api(server, 'PUT', `/api/v1/instances?token=${SECRET}`, { service: 'web', address: '127.0.0.1', port: 8080, id: 'web-1' })).status).toBe(200);
    expect((await api(server, 'PUT', '/v1/kv/app/config', 'v', h)).status).toBe(200);
    expect((await api(server, 'POST', '/eureka/apps/BILLING', { instance: { instanceId: 'b-1', hostName: 'b', app: 'BILLING', ipAddr: '127.0.0.1', dataCenterInfo: { name: 'MyOwn' } } }, { authorization: `Basic ${Buffer.from(`u:${SECRET}`).toString('base64')}` })).status).toBe(204);
    // A check aimed past the instance is refused (403): a refusal is recorded like a write.
    const refused = await api(server, 'PUT', '/v1/agent/service/register', { Name: 'db', Address: '127.0.0.1', Port: 5432, Check: { HTTP: 'http://10.1.2.3/', Interval: '10s' } });
    expect(refused.status).toBe(403);
    // Reads are not audited.
    await api(server, 'GET', '/v1/kv/app/config', undefined, h);

    const got = await until(async () => lines(path), (l) => l.length >= 4);
    expect(got).toHaveLength(4);
    expect(got.map((l) => [l.interface, l.action, l.target, l.result])).toEqual([
      ['native', 'PUT /api/v1/instances', 'service:web', 200],
      ['consul', 'PUT /v1/kv/*', 'key:app/config', 200],
      ['eureka', 'POST /eureka/apps/:app', 'service:billing', 204],
      ['consul', 'PUT /v1/agent/service/register', 'service:db', 403],
    ]);
    for (const l of got) {
      expect(l).toMatchObject({ accessor: 'acl-disabled', remote: '127.0.0.1' });
      expect(Number.isNaN(Date.parse(String(l.time)))).toBe(false);
    }
    expect(readFileSync(path, 'utf8')).not.toContain(SECRET);
  });

  it('starts a new file at the same path when reopened (logrotate moved the old one)', async () => {
    const { server, path } = await auditedServer();
    await api(server, 'PUT', '/v1/kv/a', 'x');
    await until(async () => lines(path), (l) => l.length === 1);
    renameSync(path, `${path}.1`);
    server.reopenAuditLog();
    await api(server, 'PUT', '/v1/kv/b', 'y');
    const fresh = await until(async () => lines(path), (l) => l.length === 1);
    expect(fresh.map((l) => l.target)).toEqual(['key:b']);
    expect(lines(`${path}.1`).map((l) => l.target)).toEqual(['key:a']);
  });

  it('refuses to start when the audit log cannot be opened', async () => {
    await expect(devServer({ auditLog: join(tmpdir(), 'no-such-dir-beacon', 'audit.log') })).rejects.toThrow(/ENOENT/);
  });
});
