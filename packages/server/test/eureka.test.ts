import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Eureka } from 'eureka-js-client';
import Consul from 'consul';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import type { RunningServer } from '../src/server.js';
import { api, devServer } from './helpers.js';

let server: RunningServer;
const clients: Eureka[] = [];

beforeAll(async () => {
  server = await devServer();
});

afterAll(async () => {
  for (const c of clients) await new Promise<void>((r) => c.stop(() => r()));
  await server.close();
});

const quiet = { debug() {}, info() {}, warn() {}, error() {}, level() {} };

function client(app: string, instanceId: string, port: number, extra: { servicePath?: string; shouldUseDelta?: boolean; register?: boolean } = {}): Eureka {
  const c = new Eureka({
    logger: quiet as never,
    shouldUseDelta: extra.shouldUseDelta ?? false,
    instance: {
      app,
      instanceId,
      hostName: `${instanceId}.local`,
      ipAddr: '127.0.0.1',
      port: { $: port, '@enabled': true },
      vipAddress: app.toLowerCase(),
      statusPageUrl: `http://127.0.0.1:${port}/info`,
      metadata: { version: '7' },
      dataCenterInfo: { '@class': 'com.netflix.appinfo.InstanceInfo$MyDataCenterInfo', name: 'MyOwn' },
    },
    eureka: {
      host: '127.0.0.1',
      port: server.httpAddress.port,
      servicePath: extra.servicePath ?? '/eureka/v2/apps/',
      heartbeatInterval: 300,
      registryFetchInterval: 300,
      maxRetries: 0,
      registerWithEureka: extra.register ?? true,
    },
  } as never);
  clients.push(c);
  return c;
}

const start = (c: Eureka) => new Promise<void>((resolve, reject) => c.start((err?: Error) => (err ? reject(err) : resolve())));

async function until<T>(probe: () => T | Promise<T>, what: string, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('Eureka REST API with eureka-js-client', () => {
  it('registers, heartbeats and fetches the registry', async () => {
    const orders = client('ORDERS', 'orders-1', 7001);
    let beats = 0;
    orders.on('heartbeat', () => beats++);
    await start(orders);

    const one = await api(server, 'GET', '/eureka/v2/apps/ORDERS/orders-1', undefined, { accept: 'application/json' });
    expect(one.status).toBe(200);
    expect(one.body.instance).toMatchObject({
      instanceId: 'orders-1',
      hostName: 'orders-1.local',
      app: 'ORDERS',
      ipAddr: '127.0.0.1',
      status: 'UP',
      overriddenStatus: 'UNKNOWN',
      port: { $: 7001, '@enabled': 'true' },
      securePort: { '@enabled': 'false' },
      leaseInfo: { renewalIntervalInSecs: 30, durationInSecs: 90, evictionTimestamp: 0 },
      metadata: { version: '7' },
      vipAddress: 'orders',
      statusPageUrl: 'http://127.0.0.1:7001/info',
      dataCenterInfo: { name: 'MyOwn' },
    });
    expect(typeof one.body.instance.lastDirtyTimestamp).toBe('string');

    await until(() => beats >= 2, 'two heartbeats');
    await until(() => orders.getInstancesByAppId('ORDERS').length === 1, 'the client to see itself');
    expect(orders.getInstancesByVipAddress('orders')[0]).toMatchObject({ instanceId: 'orders-1', status: 'UP' });

    const full = await api(server, 'GET', '/eureka/apps', undefined, { accept: 'application/json' });
    expect(full.body.applications).toMatchObject({ apps__hashcode: 'UP_1_', application: [{ name: 'ORDERS' }] });
    expect(Array.isArray(full.body.applications.application[0].instance)).toBe(true);
  });

  it('is one registry: a Eureka instance in the native and Consul APIs, a native one in Eureka', async () => {
    const native = await api(server, 'GET', '/api/v1/instances/orders-1');
    expect(native.body).toMatchObject({ service: 'orders', source: 'eureka', address: '127.0.0.1', port: 7001, ttlMs: 90_000, node: 'orders-1.local', meta: { version: '7' } });
    const consul = new Consul({ host: '127.0.0.1', port: server.httpAddress.port });
    try {
      const h = await consul.health.service({ service: 'orders', passing: true });
      expect(h.map((e: any) => [e.Service.ID, e.Node.Node])).toEqual([['orders-1', 'orders-1.local']]);
    } finally {
      consul.destroy();
    }

    await api(server, 'PUT', '/api/v1/instances', { service: 'payments', id: 'payments-1', address: '127.0.0.5', port: 8443, ports: { https: 8443 }, meta: { team: 'billing' } });
    const watcher = client('WATCHER', 'watcher-1', 7100, { register: false, servicePath: '/eureka/apps/' });
    await start(watcher);
    const seen = await until(() => watcher.getInstancesByAppId('PAYMENTS')[0], 'the native instance in Eureka');
    expect(seen).toMatchObject({ instanceId: 'payments-1', hostName: '127.0.0.5', status: 'UP', securePort: { $: 8443, '@enabled': 'true' }, metadata: { team: 'billing' } });
  });

  it('serves the XML documents Prometheus eureka_sd reads when asked for XML, JSON by default, 406 for neither', async () => {
    const billing = client('BILLING', 'billing-1', 7010);
    await start(billing);
    await api(server, 'PUT', '/api/v1/instances', { service: 'billing', id: 'billing-2', address: '127.0.0.6', port: 7011, meta: { note: 'a<b & "c"' } });
    // What Go's encoding/xml sees: attributes apart, element text as given (Prometheus's structs).
    const xml = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '@', textNodeName: '$', parseTagValue: false, isArray: (name) => name === 'application' || name === 'instance' });
    for (const accept of ['application/xml', 'text/xml', 'application/json;q=0.5, application/xml']) {
      const res = await api(server, 'GET', '/eureka/apps', undefined, { accept });
      expect([res.status, res.headers.get('content-type')], accept).toEqual([200, expect.stringMatching(/^application\/xml/)]);
      expect(XMLValidator.validate(res.body)).toBe(true);
      const apps = xml.parse(res.body).applications;
      expect(Number(apps.versions__delta)).toBeGreaterThan(0);
      expect(apps.apps__hashcode).toMatch(/^(\w+_\d+_)+$/);
      const app = apps.application.find((a: any) => a.name === 'BILLING');
      const byId = Object.fromEntries(app.instance.map((i: any) => [i.instanceId, i]));
      expect(byId['billing-1']).toMatchObject({
        hostName: 'billing-1.local',
        app: 'BILLING',
        ipAddr: '127.0.0.1',
        status: 'UP',
        overriddenstatus: 'UNKNOWN',
        port: { $: '7010', '@enabled': 'true' },
        securePort: { '@enabled': 'false' },
        dataCenterInfo: { '@class': 'com.netflix.appinfo.InstanceInfo$MyDataCenterInfo', name: 'MyOwn' },
        leaseInfo: { renewalIntervalInSecs: '30', durationInSecs: '90' },
        metadata: { version: '7' },
        vipAddress: 'billing',
        statusPageUrl: 'http://127.0.0.1:7010/info',
        isCoordinatingDiscoveryServer: 'false',
        actionType: 'ADDED',
      });
      expect(byId['billing-2']).toMatchObject({ ipAddr: '127.0.0.6', port: { $: '7011', '@enabled': 'true' }, metadata: { note: 'a<b & "c"' } });
    }
    const one = await api(server, 'GET', '/eureka/v2/apps/BILLING/billing-1', undefined, { accept: 'application/xml' });
    expect(xml.parse(one.body).instance[0]).toMatchObject({ instanceId: 'billing-1', port: { $: '7010' } });
    const appDoc = await api(server, 'GET', '/eureka/v2/apps/BILLING', undefined, { accept: 'text/xml' });
    expect(xml.parse(appDoc.body).application[0].instance).toHaveLength(2);
    const delta = await api(server, 'GET', '/eureka/apps/delta', undefined, { accept: 'application/xml' });
    expect(xml.parse(delta.body).applications.apps__hashcode).toBeDefined();

    for (const accept of [undefined, '*/*', 'application/json', 'application/*', 'application/xml;q=0.2, */*;q=0.9']) {
      const res = await api(server, 'GET', '/eureka/apps', undefined, accept ? { accept } : {});
      expect([res.status, res.headers.get('content-type'), typeof res.body.applications], String(accept)).toEqual([200, expect.stringMatching(/^application\/json/), 'object']);
    }
    for (const accept of ['text/html', 'application/json;q=0, application/xml;q=0']) {
      const res = await api(server, 'GET', '/eureka/apps', undefined, { accept });
      expect(res.status, accept).toBe(406);
    }
  });

  it('registers from an XML body as Java clients send it, and refuses malformed XML and DOCTYPEs with 400', async () => {
    const body = `<instance>
  <instanceId>ledger-1</instanceId><hostName>ledger-1.local</hostName><app>LEDGER</app><ipAddr>127.0.0.7</ipAddr>
  <status>UP</status><overriddenstatus>UNKNOWN</overriddenstatus>
  <port enabled="true">7020</port><securePort enabled="false">443</securePort><countryId>1</countryId>
  <dataCenterInfo class="com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo"><name>MyOwn</name></dataCenterInfo>
  <leaseInfo><renewalIntervalInSecs>30</renewalIntervalInSecs><durationInSecs>90</durationInSecs></leaseInfo>
  <metadata><team>books &amp; ledgers</team></metadata>
  <vipAddress>ledger</vipAddress><secureVipAddress>ledger</secureVipAddress>
  <isCoordinatingDiscoveryServer>false</isCoordinatingDiscoveryServer>
  <lastUpdatedTimestamp>1700000000000</lastUpdatedTimestamp><lastDirtyTimestamp>1700000000000</lastDirtyTimestamp>
</instance>`;
    const reg = await api(server, 'POST', '/eureka/v2/apps/LEDGER', body, { 'content-type': 'application/xml' });
    expect(reg.status).toBe(204);
    const back = await api(server, 'GET', '/eureka/v2/apps/LEDGER/ledger-1', undefined, { accept: 'application/json' });
    expect(back.body.instance).toMatchObject({ hostName: 'ledger-1.local', ipAddr: '127.0.0.7', status: 'UP', port: { $: 7020, '@enabled': 'true' }, metadata: { team: 'books & ledgers' } });
    const empty = body.replace('ledger-1', 'ledger-2').replace(/<metadata>.*<\/metadata>/, '<metadata class="java.util.Collections$EmptyMap"/>').replace('<leaseInfo>', '<leaseInfo/><x>').replace('</leaseInfo>', '</x>');
    expect((await api(server, 'POST', '/eureka/v2/apps/LEDGER', empty, { 'content-type': 'text/xml' })).status).toBe(204);

    for (const bad of ['<instance><app>LEDGER</instance>', '<!DOCTYPE x [<!ENTITY a "aaaa">]><instance><app>&a;</app></instance>', '<other/>']) {
      const r = await api(server, 'POST', '/eureka/v2/apps/LEDGER', bad, { 'content-type': 'application/xml' });
      expect(r.status, bad).toBe(400);
    }
    expect((await api(server, 'GET', '/eureka/v2/apps/LEDGER', undefined, { accept: 'application/json' })).body.application.instance).toHaveLength(2);
  });

  it('re-registers after a 404 heartbeat', async () => {
    const c = client('INVENTORY', 'inventory-1', 7002);
    await start(c);
    let registrations = 0;
    c.on('registered', () => registrations++);
    expect((await api(server, 'DELETE', '/api/v1/instances/inventory-1')).status).toBe(200);
    await until(() => registrations >= 1, 'the client to register again');
    await until(async () => (await api(server, 'GET', '/api/v1/instances/inventory-1')).status === 200, 'the instance to be back');
    const unknown = await api(server, 'PUT', '/eureka/v2/apps/INVENTORY/nobody');
    expect(unknown.status).toBe(404);
  });

  it('keeps a status override across renewals and takes the instance out of every answer', async () => {
    const c = client('CART', 'cart-1', 7003);
    await start(c);
    expect((await api(server, 'PUT', '/eureka/v2/apps/CART/cart-1/status?value=OUT_OF_SERVICE')).status).toBe(200);
    let beats = 0;
    c.on('heartbeat', () => beats++);
    await until(() => beats >= 2, 'renewals after the override');
    const d = await api(server, 'GET', '/eureka/v2/apps/CART/cart-1', undefined, { accept: 'application/json' });
    expect(d.body.instance).toMatchObject({ status: 'OUT_OF_SERVICE', overriddenStatus: 'OUT_OF_SERVICE' });
    const native = await api(server, 'GET', '/api/v1/services/cart/instances?passing');
    expect(native.body.instances).toEqual([]);
    await until(() => c.getInstancesByAppId('CART').length === 0, 'the client to drop the overridden instance');

    expect((await api(server, 'DELETE', '/eureka/v2/apps/CART/cart-1/status?value=UP')).status).toBe(200);
    const back = await api(server, 'GET', '/eureka/v2/apps/CART/cart-1', undefined, { accept: 'application/json' });
    expect(back.body.instance).toMatchObject({ status: 'UP', overriddenStatus: 'UNKNOWN' });
    await until(() => c.getInstancesByAppId('CART').length === 1, 'the client to see it again');
  });

  it('follows heartbeat status and metadata updates, and answers delta and vips', async () => {
    const c = client('SEARCH', 'search-1', 7004, { shouldUseDelta: true });
    await start(c);
    expect((await api(server, 'PUT', '/eureka/v2/apps/SEARCH/search-1?status=DOWN')).status).toBe(200);
    const down = await api(server, 'GET', '/eureka/v2/apps/SEARCH', undefined, { accept: 'application/json' });
    expect(down.body.application.instance[0].status).toBe('DOWN');
    expect((await api(server, 'GET', '/api/v1/instances/search-1')).body.conditions).toMatchObject({ ready: false, serving: false });
    await api(server, 'PUT', '/eureka/v2/apps/SEARCH/search-1?status=UP');

    expect((await api(server, 'PUT', '/eureka/v2/apps/SEARCH/search-1/metadata?shard=3')).status).toBe(200);
    expect((await api(server, 'GET', '/api/v1/instances/search-1')).body.meta).toEqual({ version: '7', shard: '3' });

    const delta = await api(server, 'GET', '/eureka/v2/apps/delta', undefined, { accept: 'application/json' });
    const search = delta.body.applications.application.find((a: any) => a.name === 'SEARCH');
    expect(search.instance.map((i: any) => i.actionType)).toContain('MODIFIED');
    expect(delta.body.applications.apps__hashcode).toMatch(/^(\w+_\d+_)+$/);

    const vip = await api(server, 'GET', '/eureka/v2/vips/search', undefined, { accept: 'application/json' });
    expect(vip.body.applications.application[0].instance[0].instanceId).toBe('search-1');
    expect((await api(server, 'GET', '/eureka/v2/vips/nothing')).status).toBe(404);
    expect((await api(server, 'GET', '/eureka/v2/instances/search-1', undefined, { accept: 'application/json' })).body.instance.app).toBe('SEARCH');

    // A delta after a cancel carries DELETED, which the client applies to its cache.
    await until(() => c.getInstancesByAppId('SEARCH').length === 1, 'the client to hold search-1');
    const other = client('SEARCH', 'search-2', 7005);
    await start(other);
    await until(() => c.getInstancesByAppId('SEARCH').length === 2, 'the delta to add search-2');
    await new Promise<void>((r) => other.stop(() => r()));
    const after = await api(server, 'GET', '/eureka/v2/apps/delta', undefined, { accept: 'application/json' });
    const deleted = after.body.applications.application.find((a: any) => a.name === 'SEARCH').instance.filter((i: any) => i.actionType === 'DELETED');
    expect(deleted.map((i: any) => [i.instanceId, i.hostName])).toEqual([['search-2', 'search-2.local']]);
  });

  it('refuses invalid registrations with 400', async () => {
    const base = { instance: { instanceId: 'x-1', hostName: 'x', app: 'X', ipAddr: '127.0.0.1', dataCenterInfo: { name: 'MyOwn' } } };
    expect((await api(server, 'POST', '/eureka/apps/X', base)).status).toBe(204);
    expect((await api(server, 'POST', '/eureka/apps/Y', base)).status).toBe(400);
    expect((await api(server, 'POST', '/eureka/apps/X', { instance: { ...base.instance, ipAddr: undefined } })).status).toBe(400);
    expect((await api(server, 'POST', '/eureka/apps/X', { instance: { ...base.instance, dataCenterInfo: {} } })).status).toBe(400);
    expect((await api(server, 'POST', '/eureka/apps/BAD!', { instance: { ...base.instance, app: 'BAD!' } })).status).toBe(400);
    // Lenient input: port as a number, `$` as a string.
    expect((await api(server, 'POST', '/eureka/apps/X', { instance: { ...base.instance, instanceId: 'x-2', port: 81 } })).status).toBe(204);
    expect((await api(server, 'POST', '/eureka/apps/X', { instance: { ...base.instance, instanceId: 'x-3', port: { $: '82', '@enabled': 'true' } } })).status).toBe(204);
    const x = await api(server, 'GET', '/eureka/apps/X', undefined, { accept: 'application/json' });
    expect(x.body.application.instance.map((i: any) => i.port.$).sort()).toEqual([0, 81, 82]);
    expect((await api(server, 'DELETE', '/eureka/apps/X/x-1')).status).toBe(200);
    expect((await api(server, 'DELETE', '/eureka/apps/X/x-1')).status).toBe(404);
  });
});
