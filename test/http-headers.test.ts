/**
 * What the HTTP listener tells browsers and caches: JSON answers (data and errors) are never
 * stored by a cache; the dashboard may not be framed by another site nor have its files
 * sniffed as another type; it has an icon, so loading it logs no failed request.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashApiKey, newApiKey } from '../src/submission/api-keys.js';
import { apiClient } from './helpers/http.js';
import { addCredential, addSenderDomain, startTestRelay, type TestRelay } from './helpers/relay.js';

const ADMIN_TOKEN = 'headers-admin-token-0123456789';
let relay: TestRelay;
let base: string;
let app: ReturnType<typeof apiClient>;

beforeAll(async () => {
  relay = await startTestRelay({ http: { admin_token: ADMIN_TOKEN } });
  await addSenderDomain(relay.storage, 'acme.test');
  await addCredential(relay.storage, 'app', ['acme.test']);
  const key = newApiKey();
  await relay.storage.credentials.addApiKey('app', hashApiKey(key));
  app = apiClient(relay.ports.http!, key);
  base = `http://127.0.0.1:${relay.ports.http}`;
});

afterAll(async () => {
  await relay?.stop();
});

describe('HTTP headers', () => {
  it('marks every JSON answer of the API Cache-Control: no-store, errors included', async () => {
    const answers = [
      await app('GET', '/v1/events'),
      await app('POST', '/v1/messages', { from: 'app@acme.test', to: 'a@example.net', subject: 's', text: 't' }),
      await app('GET', '/v1/messages/NOSUCHID'),
      await apiClient(relay.ports.http!)('GET', '/v1/events'),
      await apiClient(relay.ports.http!, ADMIN_TOKEN)('GET', '/v1/domains'),
      await app('GET', '/v1/no-such-route'),
    ];
    expect(answers.map((a) => a.status)).toEqual([200, 202, 404, 401, 200, 404]);
    for (const answer of answers) {
      expect(answer.headers.get('content-type')).toMatch(/^application\/json/);
      expect(answer.headers.get('cache-control')).toBe('no-store');
      expect(answer.headers.get('x-content-type-options')).toBe('nosniff');
    }
  });

  it('serves the dashboard with nosniff and a CSP that forbids framing', async () => {
    for (const file of ['/dashboard', '/dashboard/app.js', '/dashboard/app.css']) {
      const response = await fetch(base + file);
      expect(response.status).toBe(200);
      expect(response.headers.get('x-content-type-options')).toBe('nosniff');
      const csp = response.headers.get('content-security-policy') ?? '';
      expect(csp).toContain("frame-ancestors 'none'");
      expect(csp).toContain("default-src 'self'");
    }
  });

  it('gives the dashboard an icon it links to, and answers /favicon.ico without an error', async () => {
    const html = await (await fetch(`${base}/dashboard`)).text();
    const href = /<link rel="icon" href="([^"]+)"/.exec(html)?.[1];
    expect(href).toBeDefined();
    const icon = await fetch(new URL(href!, base));
    expect(icon.status).toBe(200);
    expect(icon.headers.get('content-type')).toMatch(/^image\/svg\+xml/);
    expect(await icon.text()).toMatch(/^<svg /);
    const ico = await fetch(`${base}/favicon.ico`);
    expect(ico.status).toBeLessThan(300);
  });
});
