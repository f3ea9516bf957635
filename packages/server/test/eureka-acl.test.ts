import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Eureka } from 'eureka-js-client';
import { aclServer, api, type AclTestServer } from './helpers.js';

/** Eureka's API with ACLs on: the secret is the basic-auth password, as Eureka clients send credentials. */
let acl: AclTestServer;
let web: string;
const clients: Eureka[] = [];
beforeAll(async () => {
  acl = await aclServer();
  ({ secret: web } = await acl.token('service "web" { policy = "write" }'));
  const reg = await api(acl.server, 'POST', '/eureka/apps/BILLING', registration('BILLING', 'billing-1'), basic(acl.management));
  expect(reg.status).toBe(204);
});
afterAll(async () => {
  for (const c of clients) await new Promise<void>((r) => c.stop(() => r()));
  await acl.close();
});

const basic = (secret: string) => ({ authorization: `Basic ${Buffer.from(`beacon:${secret}`).toString('base64')}`, accept: 'application/json' });
const registration = (app: string, id: string) => ({ instance: { instanceId: id, hostName: id, app, ipAddr: '127.0.0.1', port: { $: 9000 }, dataCenterInfo: { name: 'MyOwn' } } });
const quiet = { debug() {}, info() {}, warn() {}, error() {}, level() {} };

describe('Eureka API with ACLs on', () => {
  it('challenges a client without credentials when anonymous may read nothing (401, WWW-Authenticate: Basic)', async () => {
    const r = await api(acl.server, 'GET', '/eureka/apps', undefined, { accept: 'application/json' });
    expect(r.status).toBe(401);
    expect(r.headers.get('www-authenticate')).toMatch(/^Basic realm="beacon"/);
    expect((await api(acl.server, 'POST', '/eureka/apps/WEB', registration('WEB', 'web-x'))).status).toBe(401);
  });

  it("lets a token register and renew its own app and refuses every write to another's (403)", async () => {
    const h = basic(web);
    expect((await api(acl.server, 'POST', '/eureka/apps/WEB', registration('WEB', 'web-1'), h)).status).toBe(204);
    expect((await api(acl.server, 'PUT', '/eureka/apps/WEB/web-1', undefined, h)).status).toBe(200);
    for (const [method, path, body] of [
      ['POST', '/eureka/apps/BILLING', registration('BILLING', 'billing-2')],
      ['PUT', '/eureka/apps/BILLING/billing-1', undefined],
      ['DELETE', '/eureka/apps/BILLING/billing-1', undefined],
      ['PUT', '/eureka/apps/BILLING/billing-1/status?value=OUT_OF_SERVICE', undefined],
      ['PUT', '/eureka/apps/BILLING/billing-1/metadata?x=y', undefined],
    ] as const) {
      const r = await api(acl.server, method, path, body, h);
      expect([path, r.status]).toEqual([path, 403]);
    }
    // Registering WEB under billing's instance id is a conflict, whatever the token.
    expect((await api(acl.server, 'POST', '/eureka/apps/WEB', registration('WEB', 'billing-1'), h)).status).toBe(409);
    const apps = await api(acl.server, 'GET', '/eureka/apps', undefined, h);
    expect(apps.body.applications.application.map((a: { name: string }) => a.name)).toEqual(['WEB']);
    expect((await api(acl.server, 'GET', '/eureka/apps/BILLING', undefined, h)).status).toBe(403);
  });

  it('works with eureka-js-client given the secret in the service URL', async () => {
    const c = new Eureka({
      logger: quiet as never,
      instance: { ...registration('WEB', 'web-js').instance, vipAddress: 'web', port: { $: 9000, '@enabled': true }, dataCenterInfo: { '@class': 'com.netflix.appinfo.InstanceInfo$MyDataCenterInfo', name: 'MyOwn' } },
      eureka: { serviceUrls: { default: [`http://beacon:${web}@127.0.0.1:${acl.server.httpAddress.port}/eureka/apps/`] }, heartbeatInterval: 300, registryFetchInterval: 300, maxRetries: 0 },
    } as never);
    clients.push(c);
    await new Promise<void>((resolve, reject) => c.start((err?: Error) => (err ? reject(err) : resolve())));
    expect(acl.server.catalog.instance('web-js')?.service).toBe('web');
    expect(c.getInstancesByAppId('BILLING')).toEqual([]);
  });
});
