/**
 * The web UI in a real browser (Debian's chromium, driven by playwright-core; no browser is
 * downloaded) against a real `beacon server` process. One browser for the whole file.
 *
 * Screenshots of each page go to a temporary directory, and to docs/ui/ with BEACON_WRITE_DOCS=1.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { spawnServer, freePort, type RunningProcess } from '../../cli/test/helpers.js';
import { axe as axeOn, CHROMIUM, HAVE_CHROMIUM, launchChromium } from './chromium.js';

if (!HAVE_CHROMIUM) console.warn(`skipping the browser tests: no chromium at ${CHROMIUM} (apt-get install chromium, or set BEACON_CHROMIUM)`);
const UI_BUILT = existsSync(fileURLToPath(new URL('../dist/index.html', import.meta.url)));
if (HAVE_CHROMIUM && !UI_BUILT) throw new Error('packages/ui/dist is missing: run npm run build');

const DOCS = fileURLToPath(new URL('../../../docs/ui/', import.meta.url));
let SHOTS = DOCS;

/** How long a poll waits for the page to settle: generous, for a machine shared with other test runs. */
const SETTLE = { timeout: 5000 };

let server: RunningProcess;
let browser: Browser;
let ctx: BrowserContext;
let page: Page;
const dialogs: string[] = [];
/** What the UI's own pages wrote to the console as errors (a CSP refusal would show here). */
const consoleErrors: string[] = [];

async function api(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(server.url + path, {
    method,
    ...(body !== undefined ? { headers: { 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  let json: unknown = text;
  try {
    json = JSON.parse(text);
  } catch {
    /* text */
  }
  return { status: res.status, json };
}

const register = (service: string, port: number, extra: Record<string, unknown> = {}) =>
  api('PUT', '/api/v1/instances', { service, address: '127.0.0.1', port, ...extra }).then((r) => {
    expect(r.status, JSON.stringify(r.json)).toBeLessThan(300);
    return r.json.instance as { id: string };
  });

const axe = () => axeOn(page);

describe.skipIf(!HAVE_CHROMIUM)('web UI in chromium', () => {
  beforeAll(async () => {
    server = await spawnServer(['--dev', '--limit-write-rate', '0', '--node', 'ui-test']);
    browser = await launchChromium();
    ctx = await browser.newContext({ viewport: { width: 1200, height: 760 }, colorScheme: 'light', reducedMotion: 'reduce' });
    page = await ctx.newPage();
    page.on('console', (m) => {
      if (m.type() === 'error' && page.url().startsWith(server.url)) consoleErrors.push(m.text());
    });
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    SHOTS = process.env.BEACON_WRITE_DOCS === '1' ? DOCS : mkdtempSync(join(tmpdir(), 'beacon-ui-shots-'));
    mkdirSync(SHOTS, { recursive: true });
  }, 30_000);

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
    if (SHOTS !== DOCS) rmSync(SHOTS, { recursive: true, force: true });
  });

  it('serves the UI at /ui with a strict CSP, and / redirects there', async () => {
    const res = await page.goto(server.url + '/');
    expect(page.url()).toBe(server.url + '/ui/');
    expect(res?.headers()['content-security-policy']).toContain("script-src 'self'");
    await expect(page.getByRole('heading', { name: 'Overview' }).waitFor()).resolves.toBeUndefined();
    await page.getByText('live', { exact: true }).waitFor({ timeout: 5000 });
  });

  it('lists services, filters by the query in the URL and sorts', async () => {
    await register('payments', 9001, { tags: ['v2'], meta: { version: '1.2' }, zone: 'a', checks: [{ kind: 'ttl', ttlMs: 60_000, status: 'critical' }] });
    await register('payments', 9002, { tags: ['v2'], meta: { version: '1.2' }, zone: 'b', checks: [{ kind: 'ttl', ttlMs: 60_000, status: 'passing' }] });
    await register('orders', 9003, { tags: ['v1'], zone: 'a' });
    await register('inventory', 9004, { zone: 'b' });
    await page.getByRole('link', { name: 'Services' }).click();
    const table = page.locator('table.services tbody');
    await table.getByRole('link', { name: 'payments' }).waitFor();
    await page.getByRole('searchbox').fill('name~^pay tag:v2 status:critical zone:a meta.version=1.2');
    await expect.poll(() => table.getByRole('link').allTextContents(), SETTLE).toEqual(['payments']);
    expect(decodeURIComponent(page.url())).toContain('q=name~^pay tag:v2 status:critical zone:a meta.version=1.2'.replace(/ /g, '+'));
    // The query survives a reload: it lives in the URL.
    await page.reload();
    await expect.poll(() => table.getByRole('link').allTextContents(), SETTLE).toEqual(['payments']);
    await page.getByRole('searchbox').fill('zone:b');
    await expect.poll(() => table.getByRole('link').allTextContents(), SETTLE).toEqual(['inventory', 'payments']);
    await page.getByRole('searchbox').fill('');
    await page.getByRole('button', { name: 'Health' }).click();
    await page.getByRole('button', { name: /Health/ }).click();
    await expect.poll(() => table.getByRole('link').allTextContents(), SETTLE).toEqual(['payments', 'inventory', 'orders']);
    expect(page.url()).toContain('sort=-critical');
  });

  it('shows a service with copyable address and ready-made dig and curl lines', async () => {
    await ctx.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.url });
    await page.goto(`${server.url}/ui/#/services/payments`);
    await page.getByRole('button', { name: 'Copy address of payments-127.0.0.1-9001' }).click();
    await expect.poll(() => page.evaluate(() => navigator.clipboard.readText()), SETTLE).toBe('127.0.0.1:9001');
    await page.getByText('dig @127.0.0.1 -p 8600 payments.service.consul SRV +short').waitFor();
    const curl = `curl -s '${server.url}/api/v1/services/payments/instances?passing'`;
    await page.getByText(curl).waitFor();
    await page.getByRole('button', { name: 'Copy the curl command (native API)' }).click();
    await expect.poll(() => page.evaluate(() => navigator.clipboard.readText()), SETTLE).toBe(curl);
    // The curl line works as shown.
    const answer = await api('GET', '/api/v1/services/payments/instances?passing');
    expect(answer.json.instances.map((i: { port: number }) => i.port)).toEqual([9002]);
  });

  it('shows a new registration within a second, without a reload', async () => {
    await page.goto(server.url + '/ui/#/services');
    await page.getByRole('link', { name: 'orders' }).waitFor();
    const t0 = Date.now();
    await register('billing', 9005);
    await page.locator('table.services').getByRole('link', { name: 'billing' }).waitFor({ timeout: 1000 });
    console.log(`registration shown after ${Date.now() - t0} ms (machine shared with other test runs)`);
  });

  it('pauses the stream in a hidden tab, says when it is stale, and catches up on both', async () => {
    await page.goto(server.url + '/ui/#/services');
    const badge = page.getByRole('status').first();
    await expect.poll(() => badge.textContent(), SETTLE).toBe('live');
    const visibility = (hidden: boolean) =>
      page.evaluate((h) => {
        Object.defineProperty(document, 'hidden', { value: h, configurable: true });
        document.dispatchEvent(new Event('visibilitychange'));
      }, hidden);
    await visibility(true);
    await expect.poll(() => badge.textContent(), SETTLE).toBe('paused');
    await register('cart', 9010);
    await visibility(false);
    await page.locator('table.services').getByRole('link', { name: 'cart' }).waitFor({ timeout: 2000 });
    // The stream cannot reconnect: the badge turns stale, and live again once it can.
    await page.route('**/api/v1/watch*', (r) => r.abort());
    await visibility(true);
    await visibility(false);
    await expect.poll(() => badge.textContent(), SETTLE).toMatch(/^stale \d+s$/);
    await register('wishlist', 9011);
    await page.unroute('**/api/v1/watch*');
    await page.locator('table.services').getByRole('link', { name: 'wishlist' }).waitFor({ timeout: 3000 });
    expect(await badge.textContent()).toBe('live');
  });

  it('moves the health bar when a check turns critical', async () => {
    const inst = await register('ledger', 9006, { checks: [{ kind: 'ttl', ttlMs: 60_000, status: 'passing' }] });
    const bar = page.locator('table.services tr', { has: page.getByRole('link', { name: 'ledger', exact: true }) }).locator('.bar');
    await expect.poll(() => bar.getAttribute('data-critical'), SETTLE).toBe('0');
    expect((await api('PUT', `/api/v1/checks/service:${inst.id}/fail`, { note: 'disk full' })).status).toBe(200);
    await expect.poll(() => bar.getAttribute('data-critical'), { timeout: 2000 }).toBe('1');
    expect(await bar.getAttribute('aria-label')).toBe('0 passing, 0 warning, 1 critical');
  });

  it('puts an instance in maintenance from the UI, with a reason and a confirmation', async () => {
    const inst = await register('search', 9007);
    await page.goto(`${server.url}/ui/#/instances/${encodeURIComponent(inst.id)}`);
    await expect.poll(() => page.getByTestId('verdict').textContent(), SETTLE).toContain('In every answer');
    await page.getByRole('button', { name: 'Maintenance', exact: true }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel('Reason').fill('kernel upgrade');
    await dialog.getByRole('button', { name: 'Confirm' }).click();
    await expect.poll(() => page.getByTestId('verdict').textContent(), SETTLE).toContain('Left out');
    const explained = await api('GET', `/api/v1/instances/${encodeURIComponent(inst.id)}/explain`);
    expect(explained.json.maintenance.reason).toBe('kernel upgrade');
    await page.getByRole('button', { name: 'End maintenance' }).waitFor();
    await page.getByRole('list').filter({ hasText: 'maintenance' }).first().waitFor();
    // Cancel changes nothing; Drain with a reason marks it terminating.
    await page.getByRole('button', { name: 'Drain', exact: true }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Cancel' }).click();
    expect((await api('GET', `/api/v1/instances/${encodeURIComponent(inst.id)}`)).json.conditions.terminating).toBe(false);
    await page.getByRole('button', { name: 'Drain', exact: true }).click();
    await page.getByRole('dialog').getByLabel('Reason').fill('moving to zone b');
    await page.getByRole('dialog').getByRole('button', { name: 'Confirm' }).click();
    await page.getByRole('button', { name: 'Stop draining' }).waitFor();
    expect((await api('GET', `/api/v1/instances/${encodeURIComponent(inst.id)}`)).json.draining.reason).toBe('moving to zone b');
    // Deregister: its reason lands in the history.
    await page.getByRole('button', { name: 'Deregister' }).click();
    await page.getByRole('dialog').getByLabel('Reason').fill('decommissioned');
    await page.getByRole('dialog').getByRole('button', { name: 'Confirm' }).click();
    await expect.poll(() => page.getByTestId('verdict').textContent(), SETTLE).toContain('Not registered: deregistered through the API: decommissioned');
  });

  it('refuses a conflicting KV edit and shows it', async () => {
    expect((await api('PUT', '/v1/kv/app/config?flags=42', 'v1')).json).toBe(true);
    await page.goto(`${server.url}/ui/#/kv?prefix=app%2F`);
    await page.getByRole('link', { name: 'app/config' }).click();
    const value = page.getByRole('textbox', { name: 'Value' });
    await expect.poll(() => value.inputValue(), SETTLE).toBe('v1');
    // Someone else writes meanwhile.
    expect((await api('PUT', '/v1/kv/app/config?flags=42', 'v2-from-elsewhere')).json).toBe(true);
    await value.fill('v2-from-ui');
    await page.getByRole('button', { name: /^Save/ }).click();
    await page.getByText(/^Refused: app\/config changed since you loaded it/).waitFor();
    const now = await api('GET', '/v1/kv/app/config?raw');
    expect(now.json).toBe('v2-from-elsewhere');
    // After a reload the edit goes through.
    await page.getByRole('button', { name: 'Reload' }).click();
    await expect.poll(() => value.inputValue(), SETTLE).toBe('v2-from-elsewhere');
    await value.fill('v3-from-ui');
    await page.getByRole('button', { name: /^Save/ }).click();
    await page.getByText('Saved.').waitFor();
    expect((await api('GET', '/v1/kv/app/config?raw')).json).toBe('v3-from-ui');
    // The key's flags survive the edit (Consul would reset them to 0 on a PUT without them).
    expect((await api('GET', '/v1/kv/app/config')).json[0].Flags).toBe(42);
  });

  it('renders registry strings as text', async () => {
    const evil = '<img src=x onerror=alert(1)>';
    const inst = await register('xss', 9008, { id: evil, tags: [evil], meta: { note: evil }, checks: [{ kind: 'ttl', ttlMs: 60_000, status: 'critical' }] });
    expect((await api('PUT', `/api/v1/checks/service:${encodeURIComponent(inst.id)}/fail`, { note: evil })).status).toBe(200);
    await page.goto(`${server.url}/ui/#/services/xss`);
    await page.getByRole('link', { name: evil }).waitFor();
    await page.goto(`${server.url}/ui/#/instances/${encodeURIComponent(evil)}`);
    await page.getByRole('heading', { name: evil }).waitFor();
    await page.locator('pre.output', { hasText: evil }).first().waitFor();
    expect(await page.locator('img').count()).toBe(0);
    expect(dialogs).toEqual([]);
  });

  it('refuses a cross-site form that posts to the server', async () => {
    // Another site's page (another origin) with a form aimed at this server's Eureka route, which reads a posted body.
    const evilPort = await freePort();
    const evil: Server = createServer((_req, res) => {
      res.setHeader('content-type', 'text/html');
      res.end(
        `<form id=f method=POST enctype=text/plain action="${server.url}/eureka/apps/EVIL"><input name='{"instance":{"hostName":"evil","app":"EVIL","ipAddr":"127.0.0.1","port":{"$":80},"x":"' value='"}}'></form>` +
          `<script>document.getElementById('f').submit()</script>`,
      );
    });
    await new Promise<void>((r) => evil.listen(evilPort, '127.0.0.1', r));
    try {
      const answered = page.waitForResponse((r) => r.url().startsWith(`${server.url}/eureka/apps/EVIL`));
      await page.goto(`http://127.0.0.1:${evilPort}/`);
      expect((await answered).status()).toBe(403);
      expect((await api('GET', '/api/v1/services/evil/instances')).json.instances).toEqual([]);
    } finally {
      await new Promise((r) => evil.close(r));
    }
  });

  it('explains self-preservation on the Overview when many leases lapse at once', async () => {
    // Ten 1-second leases nobody renews: most of the server's leases are about to expire together.
    for (let k = 0; k < 10; k++) await register('batch', 9100 + k, { ttlMs: 1000 });
    // The server notices on its next tick (1 s); the page reads the state when it opens, then every 5 s.
    await expect.poll(async () => (await api('GET', '/api/v1/self-preservation')).json.active, { timeout: 15_000 }).toBe(true);
    await page.goto(server.url + '/ui/#/');
    const banner = page.getByRole('alert').filter({ hasText: 'Self-preservation is on' });
    await banner.waitFor({ timeout: 5000 });
    expect(await banner.textContent()).toMatch(/leases \(\d+%\) are about to expire or expired in the last 1m .*this server\s+being cut off/s);
  });

  it('keeps a token for the tab and sends it with every request and the stream', async () => {
    await page.goto(server.url + '/ui/#/login');
    await page.getByLabel('Secret').fill('s3cret-token');
    await page.getByRole('button', { name: 'Use token' }).click();
    // No ACLs on this server: tokens/self answers 401, the token is kept, writing stays possible.
    await page.getByText('Token kept. This server does not use ACLs.').waitFor();
    const sent: { url: string; auth: string | undefined }[] = [];
    const onRequest = (r: import('playwright-core').Request) => sent.push({ url: r.url(), auth: r.headers()['authorization'] });
    page.on('request', onRequest);
    await page.reload();
    await page.getByText('token set').waitFor();
    await page.getByText('live', { exact: true }).waitFor();
    await page.getByRole('link', { name: 'Services' }).click();
    await page.getByRole('link', { name: 'payments' }).click();
    await page.getByRole('heading', { name: 'payments' }).waitFor();
    page.off('request', onRequest);
    const api = sent.filter((r) => new URL(r.url).pathname.startsWith('/api/'));
    // One stream for the tab, however many pages it goes through.
    expect(api.filter((r) => new URL(r.url).pathname === '/api/v1/watch')).toHaveLength(1);
    expect(api.filter((r) => r.auth !== 'Bearer s3cret-token')).toEqual([]);
    await page.goto(server.url + '/ui/#/login');
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByText('Logged out.').waitFor();
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
  });

  it('has no WCAG 2.1 AA violations in either theme, and saves a screenshot of each page', async () => {
    const search = (await register('search', 9012, { checks: [{ kind: 'ttl', ttlMs: 60_000, status: 'warning' }] })).id;
    await api('PUT', `/api/v1/instances/${encodeURIComponent(search)}/maintenance`, { reason: 'kernel upgrade' });
    await api('PUT', '/v1/kv/app/feature-flags', '{"new-checkout":true}');
    // Some history for the Timeline: a check recovers.
    await api('PUT', '/api/v1/checks/service:payments-127.0.0.1-9001/pass', { note: 'HTTP 200 OK' });
    const pages: [string, string, string][] = [
      ['overview', '#/', 'Overview'],
      ['services', '#/services', 'Services'],
      ['service', '#/services/payments', 'payments'],
      ['instance', `#/instances/${encodeURIComponent(search)}`, search],
      ['timeline', '#/timeline?service=payments&from=1', 'Timeline'],
      ['kv', '#/kv?prefix=app%2F&key=app%2Fconfig', 'Key/value'],
    ];
    for (const scheme of ['light', 'dark'] as const) {
      await page.emulateMedia({ colorScheme: scheme });
      for (const [name, hash, heading] of pages) {
        await page.goto(`${server.url}/ui/${hash}`);
        await page.getByRole('heading', { name: heading, exact: true }).first().waitFor();
        await page.getByText('live', { exact: true }).waitFor();
        await page.waitForTimeout(150);
        expect(await axe(), `axe on ${name} (${scheme})`).toEqual([]);
        if (scheme === 'light' || name === 'services') await page.screenshot({ path: join(SHOTS, `${name}${scheme === 'dark' ? '-dark' : ''}.png`) });
      }
    }
    // Nothing the pages did was refused by their Content-Security-Policy (styles are set through the CSSOM, never inline).
    expect(consoleErrors.filter((e) => /Content Security Policy/i.test(e))).toEqual([]);
    // The harness itself: axe does see a violation when there is one.
    await page.evaluate(() => document.querySelector('main')!.append(Object.assign(document.createElement('button'), { id: 'unnamed' })));
    expect((await axe()).join('\n')).toMatch(/^button-name: .*#unnamed/);
    // Keyboard: `/` goes to the search box; the skip link comes first and moves focus into the page.
    await page.goto(`${server.url}/ui/#/services`);
    await page.getByRole('link', { name: 'payments' }).waitFor();
    await page.keyboard.press('/');
    expect(await page.evaluate(() => (document.activeElement as HTMLInputElement).type)).toBe('search');
    await page.keyboard.type('ledg');
    // Tab order: the list, its three sort buttons, then the first row's link.
    const focused: string[] = [];
    for (let k = 0; k < 5; k++) {
      await page.keyboard.press('Tab');
      focused.push(await page.evaluate(() => document.activeElement?.getAttribute('aria-label') ?? document.activeElement?.textContent ?? ''));
    }
    expect(focused).toEqual(['Service list', 'Service ▲', 'Ready / total', 'Health', 'ledger']);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'ledger' }).waitFor();
    await page.reload();
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Skip to content');
    await page.keyboard.press('Enter');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('main');
  });
});
