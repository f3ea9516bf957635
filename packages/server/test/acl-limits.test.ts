import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { aclServer, api, bearer, type AclTestServer } from './helpers.js';

/** Per-token buckets (ACLs on): one token's writes and watches are charged to it from any address. */
let acl: AclTestServer;
beforeAll(async () => {
  acl = await aclServer({ limits: { tokenWriteRate: 1, tokenWriteBurst: 2, tokenWatchRate: 1, tokenWatchBurst: 1 } });
});
afterAll(() => acl.close());

const register = (secret: string, n: number) => api(acl.server, 'PUT', '/v1/agent/service/register', { Name: 'web', ID: `web-${n}`, Address: '127.0.0.1', Port: 8000 + n }, bearer(secret));

describe('per-token limits', () => {
  it('answers 429 with Retry-After once a token spends its write burst, and leaves other tokens alone', async () => {
    const { secret } = await acl.token('service "web" { policy = "write" }');
    const { secret: other } = await acl.token('service "web" { policy = "write" }');
    expect([(await register(secret, 1)).status, (await register(secret, 2)).status]).toEqual([200, 200]);
    const limited = await register(secret, 3);
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('1');
    expect(limited.body).toMatch(/too many writes with this token/);
    expect((await register(other, 4)).status).toBe(200);
  });

  it('charges opening a watch to the token too (a blocking read)', async () => {
    const { secret } = await acl.token('service "web" { policy = "read" }');
    const first = await api(acl.server, 'GET', '/v1/health/service/web', undefined, { 'x-consul-token': secret });
    const index = first.headers.get('x-consul-index');
    const h = { 'x-consul-token': secret };
    const parked = api(acl.server, 'GET', `/v1/health/service/web?index=${index}&wait=200ms`, undefined, h);
    const second = await api(acl.server, 'GET', `/v1/health/service/web?index=${index}&wait=200ms`, undefined, h);
    expect([second.status, second.headers.get('retry-after')]).toEqual([429, '1']);
    expect((await parked).status).toBe(200);
  });
});
