/**
 * The web UI against a real `beacon server --acl` process, in chromium (one launch for the file):
 * what anonymous, a read-only token and a write token see and may do, a refused token, log out,
 * and axe-core on the token page in both themes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { spawnServer, type RunningProcess } from '../../cli/test/helpers.js';
import { axe, CHROMIUM, HAVE_CHROMIUM, launchChromium } from './chromium.js';

if (!HAVE_CHROMIUM) console.warn(`skipping the UI ACL tests: no chromium at ${CHROMIUM} (apt-get install chromium, or set BEACON_CHROMIUM)`);
if (HAVE_CHROMIUM && !existsSync(fileURLToPath(new URL('../dist/index.html', import.meta.url)))) throw new Error('packages/ui/dist is missing: run npm run build');

const DOCS = fileURLToPath(new URL('../../../docs/ui/', import.meta.url));
const SETTLE = { timeout: 5000 };
const ANONYMOUS = '00000000-0000-0000-0000-000000000002';

let server: RunningProcess;
let browser: Browser;
let page: Page;
let shots: string;
let management: string;
const tokens = { read: '', write: '' };

/** A call to the server as a program would make it, with a token. */
async function api(method: string, path: string, secret: string, body?: unknown): Promise<any> {
  const res = await fetch(server.url + path, {
    method,
    headers: { authorization: `Bearer ${secret}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  // Consul's KV answers `?raw` with the value as is.
  return path.endsWith('?raw') ? text : JSON.parse(text);
}

async function tokenWith(name: string, rules: string): Promise<string> {
  const policy = await api('POST', '/api/v1/acl/policies', management, { name, rules });
  return (await api('POST', '/api/v1/acl/tokens', management, { description: name, policies: [{ id: policy.id }] })).secretId;
}

const register = (service: string, port: number) => api('PUT', '/api/v1/instances', management, { service, address: '127.0.0.1', port }).then((r) => r.instance.id as string);
const serviceLinks = () => page.locator('table.services tbody').getByRole('link').allTextContents();

async function login(secret: string): Promise<void> {
  await page.goto(`${server.url}/ui/#/login`);
  await page.getByLabel('Secret').fill(secret);
  await page.getByRole('button', { name: 'Use token' }).click();
}

/** The write buttons of an instance page, once the page has had the server's answer on whether the token may write. */
async function instanceButtons(id: string): Promise<{ allowed: boolean; buttons: string[] }> {
  const asked = page.waitForResponse((r) => new URL(r.url()).pathname === '/api/v1/acl/authorize');
  await page.goto(`${server.url}/ui/#/instances/${encodeURIComponent(id)}`);
  const { allowed } = (await (await asked).json()) as { allowed: boolean };
  await expect.poll(() => page.getByTestId('verdict').textContent(), SETTLE).toContain('In every answer');
  // The answer is rendered in the same frame as the verdict or before it.
  await page.waitForTimeout(100);
  const buttons = await page.locator('.actions').getByRole('button').allTextContents();
  return { allowed, buttons };
}

describe.skipIf(!HAVE_CHROMIUM)('web UI with ACLs, in chromium', () => {
  beforeAll(async () => {
    server = await spawnServer(['--dev', '--acl', '--limit-write-rate', '0', '--node', 'ui-acl']);
    management = (await api('PUT', '/api/v1/acl/bootstrap', '')).secretId;
    // Anonymous may read one service; the read token the web services and the app/ keys; the write token may change both.
    const pub = await api('POST', '/api/v1/acl/policies', management, { name: 'public-read', rules: 'service "public" { policy = "read" }' });
    await api('PUT', `/api/v1/acl/tokens/${ANONYMOUS}`, management, { policies: [{ id: pub.id }] });
    tokens.read = await tokenWith('web-read', 'service_prefix "web" { policy = "read" }\nkey_prefix "app/" { policy = "list" }');
    tokens.write = await tokenWith('web-write', 'service_prefix "web" { policy = "write" }\nkey_prefix "app/" { policy = "write" }');
    for (const [service, port] of [['public', 9001], ['web', 9002], ['web-api', 9003], ['payments', 9004]] as const) await register(service, port);
    await api('PUT', '/v1/kv/app/config', management, 'v1');
    browser = await launchChromium();
    page = await (await browser.newContext({ viewport: { width: 1000, height: 600 }, colorScheme: 'light', reducedMotion: 'reduce' })).newPage();
    shots = process.env.BEACON_WRITE_DOCS === '1' ? DOCS : mkdtempSync(join(tmpdir(), 'beacon-ui-acl-shots-'));
  }, 30_000);

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
    if (shots && shots !== DOCS) rmSync(shots, { recursive: true, force: true });
  });

  it('shows anonymous only what it may read, and says a token shows more', async () => {
    // The Overview counts what anonymous may read; the server's own state (operator:read) is a note, not an error.
    await page.goto(`${server.url}/ui/#/`);
    await page.getByText('1 ready in 1 services').waitFor();
    expect(await page.getByText('Your token may not read this (it needs operator:read).').count()).toBe(2);
    expect(await page.locator('main .error').count()).toBe(0);
    await page.goto(`${server.url}/ui/#/services`);
    await expect.poll(serviceLinks, SETTLE).toEqual(['public']);
    expect(await page.getByTestId('anonymous').textContent()).toContain('No token: you see only what this server lets anonymous requests read');
    await page.getByTestId('anonymous').getByRole('link', { name: 'Give a token' }).click();
    await page.getByRole('heading', { name: 'Token' }).waitFor();
    await page.getByText('No token: you see only what this server lets anonymous requests read, and can change nothing').waitFor();
    expect(await page.locator('header').textContent()).toContain('anonymous');
  });

  it('refuses an unknown token with a clear message and does not keep it', async () => {
    await login('00000000-0000-4000-8000-00000000dead');
    await page.getByText('The server does not know this token (ACL not found). It was not kept').waitFor();
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
    await page.reload();
    await page.getByText('No token: you see only what').first().waitFor();
  });

  it('with a read-only token shows the web services only, streams only their changes, and offers no writes', async () => {
    await login(tokens.read);
    await page.getByText('Logged in.').waitFor();
    await page.getByText('Logged in as web-read').waitFor();
    expect(await page.evaluate(() => sessionStorage.getItem('beacon.token'))).toBe(tokens.read);
    await page.getByRole('link', { name: 'Services' }).click();
    await expect.poll(serviceLinks, SETTLE).toEqual(['web', 'web-api']);
    expect(await page.getByTestId('anonymous').count()).toBe(0);
    // Live: a change to a service it may not read is not streamed; one it may read comes after it and shows.
    await register('payments', 9005);
    await register('web-new', 9006);
    await expect.poll(serviceLinks, SETTLE).toEqual(['web', 'web-api', 'web-new']);
    expect(await instanceButtons('web-127.0.0.1-9002')).toEqual({ allowed: false, buttons: [] });
    // A service it may not read: the server refuses, and the page says so.
    await page.goto(`${server.url}/ui/#/instances/payments-127.0.0.1-9004`);
    await page.getByText('Your token may not do this. Permission denied: token lacks service:read on "payments"').waitFor();
    // KV: the value shows, read only, with no save and no new key.
    await page.goto(`${server.url}/ui/#/kv?prefix=app%2F&key=app%2Fconfig`);
    const value = page.getByRole('textbox', { name: 'Value' });
    await expect.poll(() => value.inputValue(), SETTLE).toBe('v1');
    await page.waitForTimeout(200);
    expect(await value.getAttribute('readonly')).not.toBeNull();
    expect(await page.getByRole('button', { name: /^Save/ }).count()).toBe(0);
    expect(await page.getByRole('button', { name: 'Create' }).count()).toBe(0);
  });

  it('with a write token shows the write buttons, and maintenance works', async () => {
    await login(tokens.write);
    await page.getByText('Logged in as web-write').waitFor();
    const id = 'web-127.0.0.1-9002';
    expect(await instanceButtons(id)).toEqual({ allowed: true, buttons: ['Maintenance', 'Drain', 'Deregister'] });
    await page.getByRole('button', { name: 'Maintenance', exact: true }).click();
    await page.getByRole('dialog').getByLabel('Reason').fill('patching');
    await page.getByRole('dialog').getByRole('button', { name: 'Confirm' }).click();
    await expect.poll(() => page.getByTestId('verdict').textContent(), SETTLE).toContain('Left out');
    expect((await api('GET', `/api/v1/instances/${id}/explain`, management)).maintenance.reason).toBe('patching');
    await page.goto(`${server.url}/ui/#/kv?prefix=app%2F&key=app%2Fconfig`);
    await page.getByRole('button', { name: /^Save/ }).waitFor();
    await page.getByRole('textbox', { name: 'Value' }).fill('v2');
    await page.getByRole('button', { name: /^Save/ }).click();
    await page.getByText('Saved.').waitFor();
    expect(await api('GET', '/v1/kv/app/config?raw', management)).toBe('v2');
  });

  it('logs out: the token leaves sessionStorage and the pages are anonymous again', async () => {
    await page.goto(`${server.url}/ui/#/login`);
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByText('Logged out.').waitFor();
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
    await page.getByRole('link', { name: 'Services' }).click();
    await expect.poll(serviceLinks, SETTLE).toEqual(['public']);
  });

  it('drops a kept token the server no longer knows, and goes on as anonymous', async () => {
    const secret = await tokenWith('short-lived', 'service_prefix "web" { policy = "read" }');
    await login(secret);
    await page.getByText('Logged in as short-lived').waitFor();
    const self = await api('GET', '/api/v1/acl/tokens/self', secret);
    await api('DELETE', `/api/v1/acl/tokens/${self.accessorId}`, management);
    await page.reload();
    await page.getByText('No token: you see only what').first().waitFor();
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
    await page.getByRole('link', { name: 'Services' }).click();
    await expect.poll(serviceLinks, SETTLE).toEqual(['public']);
  });

  it('has no WCAG 2.1 AA violations on the token page and under the anonymous notice, in either theme', async () => {
    await login(tokens.read);
    await page.getByText('Logged in as web-read').waitFor();
    for (const scheme of ['light', 'dark'] as const) {
      await page.emulateMedia({ colorScheme: scheme });
      await page.reload();
      await page.getByText('Logged in as web-read').waitFor();
      expect(await axe(page), `axe on the token page, logged in (${scheme})`).toEqual([]);
      if (scheme === 'light') await page.screenshot({ path: join(shots, 'token.png'), clip: { x: 0, y: 0, width: 1000, height: 280 } });
    }
    await page.getByRole('button', { name: 'Log out' }).click();
    for (const scheme of ['light', 'dark'] as const) {
      await page.emulateMedia({ colorScheme: scheme });
      await page.getByLabel('Secret').fill('00000000-0000-4000-8000-00000000dead');
      await page.getByRole('button', { name: 'Use token' }).click();
      await page.getByText('The server does not know this token').waitFor();
      expect(await axe(page), `axe on the token page, a token refused (${scheme})`).toEqual([]);
    }
    // The anonymous notice over a page.
    await page.goto(`${server.url}/ui/#/services`);
    await expect.poll(serviceLinks, SETTLE).toEqual(['public']);
    for (const scheme of ['light', 'dark'] as const) {
      await page.emulateMedia({ colorScheme: scheme });
      expect(await axe(page), `axe on the services page, anonymous (${scheme})`).toEqual([]);
    }
  });
});
