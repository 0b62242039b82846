/**
 * The dashboard in headless Chromium (Debian's chromium, driven by playwright-core) against a
 * running relay with real traffic: the page loads with the admin token, the chart and tables
 * show the test run's data, and a search finds a recipient; an operator token sees only the
 * panels and actions of its role. RELAY_UPDATE_SCREENSHOT=1 saves the
 * page as docs/dashboard.png (the README's screenshot).
 */
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addOperator } from '../src/operators/manage.js';
import { hashApiKey, newApiKey } from '../src/submission/api-keys.js';
import { ROOT } from './helpers/cli.js';
import { apiClient } from './helpers/http.js';
import { addCredential, addSenderDomain, startTestRelay, type TestRelay } from './helpers/relay.js';
import { startMailHosts, type MailHosts } from './helpers/mail-hosts.js';
import { waitFor } from './helpers/wait.js';

const CHROMIUM = '/usr/bin/chromium';
const ADMIN_TOKEN = 'dashboard-admin-token-0123456789';
const hasChromium = existsSync(CHROMIUM);
if (!hasChromium) console.warn(`dashboard test skipped: ${CHROMIUM} is missing (apt-get install -y chromium; .ci/run installs it)`);

let hosts: MailHosts;
let relay: TestRelay;
let browser: BrowserContext;
let appKey: string;

beforeAll(async () => {
  if (!hasChromium) return;
  hosts = await startMailHosts({
    'example.test': {},
    'bouncy.test': { rcpt: (address) => (address.startsWith('nobody') ? `550 5.1.1 <${address}>: mailbox unavailable` : undefined) },
  });
  relay = await startTestRelay({ http: { admin_token: ADMIN_TOKEN }, delivery: hosts.delivery });
  await addSenderDomain(relay.storage, 'acme.test');
  await relay.storage.domains.setVerification('acme.test', true, {
    verification: { status: 'found' },
    dkim: { status: 'found' },
    spf: { status: 'found' },
    dmarc: { status: 'missing' },
  });
  await addCredential(relay.storage, 'shop', ['acme.test']);
  const key = newApiKey();
  await relay.storage.credentials.addApiKey('shop', hashApiKey(key));
  appKey = key;
  await relay.storage.templates.add({ name: 'receipt', subject: 'Your receipt', text: 'Thanks', html: null });
  const app = apiClient(relay.ports.http!, key);
  const to = [...Array.from({ length: 8 }, (_, i) => `customer${i}@example.test`), 'nobody1@bouncy.test', 'nobody2@bouncy.test'];
  for (const address of to)
    await app('POST', '/v1/messages', {
      from: 'shop@acme.test',
      to: address,
      subject: 'Your order',
      text: 'Thanks!',
      tags: address.startsWith('nobody') ? ['order', 'risky'] : ['order'],
    });
  await waitFor(async () => {
    const { byStatus } = await relay.storage.queue.stats();
    return byStatus.bounced === 2 && byStatus.delivered === 8;
  }, 'deliveries and bounces');

  // A persistent context is how Playwright takes a fresh --user-data-dir.
  browser = await chromium.launchPersistentContext(mkdtempSync(path.join(tmpdir(), 'relay-chromium-')), {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 900 },
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await relay?.stop();
  await hosts?.stop();
});

describe.skipIf(!hasChromium)('dashboard', { timeout: 60_000 }, () => {
  it('asks for the admin token and shows the API error for a wrong one', async () => {
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${relay.ports.http}/dashboard`);
    await page.fill('#token', 'wrong-token');
    await page.click('#login button');
    await expect.poll(() => page.textContent('#error')).toMatch(/invalid or revoked API key/);
    await page.close();
  });

  it('loads real data: counts, a chart, failing domains, tags, DNS status, and finds a recipient', async () => {
    const page = await browser.newPage();
    // Nothing may fail along the way: no console error, no script error, no failed request (the icon included).
    const problems: string[] = [];
    page.on('console', (message) => message.type() === 'error' && problems.push(`console: ${message.text()}`));
    page.on('pageerror', (error) => problems.push(`page: ${error.message}`));
    page.on('response', (response) => response.status() >= 400 && problems.push(`${response.status()} ${response.url()}`));
    // One delivered recipient complained later (a feedback-loop report).
    const [delivered] = await relay.storage.events.query({ status: 'delivered', limit: 1 });
    await relay.storage.feedback.record(
      { ...delivered!, status: 'complained', smtpCode: null, response: 'feedback report: abuse', category: 'abuse' },
      null,
    );
    await page.goto(`http://127.0.0.1:${relay.ports.http}/dashboard#token=${ADMIN_TOKEN}`);
    await page.waitForSelector('#main:not([hidden])');
    expect(await page.textContent('#complaint-rate')).toBe('12.50 %');
    expect(await page.textContent('#complaints')).toBe('1 complaints, 0 unsubscribes');
    expect(await page.textContent('#accepted')).toBe('10');
    expect(await page.textContent('#delivered')).toBe('8');
    expect(await page.textContent('#bounced')).toBe('2');
    expect(await page.textContent('#bounce-rate')).toBe('20.0 %');
    expect(await page.textContent('#queue-depth')).toBe('0 pending');
    // The chart: one line per series, the accepted one rising to 10 in the current hour.
    expect(await page.locator('#chart svg polyline').count()).toBe(3);
    const accepted = await page.getAttribute('#chart polyline.series-accepted', 'points');
    expect(accepted!.split(' ').length).toBeGreaterThanOrEqual(24);
    expect(await page.textContent('#failing tbody')).toMatch(/bouncy\.test.*550 5\.1\.1/s);
    expect(await page.textContent('#domains tbody')).toMatch(/acme\.test\s*yes\s*found\s*found\s*missing/);
    // By tag: accepted, delivered, bounced, deferred.
    expect((await page.locator('#tags tbody tr').allTextContents()).map((row) => row.replace(/\s+/g, ' ').trim())).toEqual([
      expect.stringMatching(/^order ?10 ?8 ?2 ?0$/),
      expect.stringMatching(/^risky ?2 ?0 ?2 ?0$/),
    ]);
    // The packaged shaping destinations, at their configured budgets.
    expect(await page.textContent('#shaping tbody')).toMatch(/^gmail\s*1\s*5\s*20\/s\s*0\s*no/);
    // The token left the address bar once read.
    expect(page.url()).not.toContain(ADMIN_TOKEN);

    await page.fill('#recipient', 'nobody2@bouncy.test');
    await page.click('#search button');
    await expect.poll(async () => page.locator('#events tbody tr').count()).toBe(2);
    const rows = await page.locator('#events tbody tr').allTextContents();
    expect(rows.every((row) => row.includes('nobody2@bouncy.test'))).toBe(true);
    expect(rows[0]).toMatch(/bounced.*mailbox unavailable/);

    await page.fill('#recipient', '');
    await page.click('#search button');
    await expect.poll(async () => page.locator('#events tbody tr').count()).toBe(21); // 20 from sending, and the complaint
    const screenshot = await page.screenshot();
    expect(screenshot.length).toBeGreaterThan(10_000);
    if (process.env.RELAY_UPDATE_SCREENSHOT) writeFileSync(path.join(ROOT, 'docs/dashboard.png'), screenshot);
    expect(problems).toEqual([]);
    await page.close();
  });

  it('shows each role only the panels and actions it may use', async () => {
    const visible = async (token: string) => {
      const page = await browser.newPage();
      await page.goto(`http://127.0.0.1:${relay.ports.http}/dashboard#token=${token}`);
      await page.waitForSelector('#main:not([hidden])');
      await page.waitForSelector('#suppressions tbody tr');
      const shown = {
        whoami: await page.textContent('#whoami'),
        domains: await page.isVisible('#domains'),
        templates: await page.isVisible('#templates'),
        queue: await page.isVisible('#queue-depth'),
        suppressForm: await page.isVisible('#suppress'),
        verifyButtons: await page.locator('#domains button').count(),
        templateRemove: await page.locator('#templates button').count(),
      };
      return { page, shown };
    };
    const token = async (role: 'viewer' | 'sender-admin' | 'template-editor') =>
      (await addOperator(relay.storage.operators, { name: `dash-${role}`, role })).token;

    const viewer = await visible(await token('viewer'));
    expect(viewer.shown).toEqual({
      whoami: 'dash-viewer (viewer)',
      domains: true,
      templates: true,
      queue: true,
      suppressForm: false,
      verifyButtons: 0,
      templateRemove: 0,
    });
    await viewer.page.close();

    const editor = await visible(await token('template-editor'));
    expect(editor.shown).toMatchObject({ templates: true, templateRemove: 1, suppressForm: false, verifyButtons: 0 });
    await editor.page.close();

    const senderAdmin = await visible(await token('sender-admin'));
    expect(senderAdmin.shown).toMatchObject({ domains: true, verifyButtons: 1, suppressForm: true, templateRemove: 0 });
    await senderAdmin.page.fill('#suppress-address', 'unsubscribed@example.test');
    await senderAdmin.page.click('#suppress button');
    await expect.poll(() => senderAdmin.page.textContent('#suppressions tbody')).toContain('unsubscribed@example.test');
    await senderAdmin.page.close();

    // An app's key: its own traffic and suppressions, none of the operators' panels.
    const app = await visible(appKey);
    expect(app.shown).toMatchObject({ whoami: 'shop (app)', domains: false, templates: false, queue: false, suppressForm: true });
    await app.page.close();
  });
});
