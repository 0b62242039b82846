/**
 * The HTTP API against a running relay: apps send with their API key through the same pipeline
 * as SMTP (policy, suppression, DKIM, the queue), mail reaches a real MX sink on loopback, and
 * the message, events, suppressions, domains, stats, health, metrics and OpenAPI endpoints
 * answer as a client would check them.
 */
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashApiKey, newApiKey } from '../src/submission/api-keys.js';
import { apiClient } from './helpers/http.js';
import { addCredential, addSenderDomain, startTestRelay, type TestRelay } from './helpers/relay.js';
import { startMailHosts, type MailHosts } from './helpers/mail-hosts.js';
import type { Sink } from './helpers/sink.js';
import { waitFor } from './helpers/wait.js';

const ADMIN_TOKEN = 'admin-token-for-tests-0123456789';
let hosts: MailHosts;
/** example.test's MX. */
let mx: Sink;
let relay: TestRelay;
let app: ReturnType<typeof apiClient>;
let otherApp: ReturnType<typeof apiClient>;
let admin: ReturnType<typeof apiClient>;
let anonymous: ReturnType<typeof apiClient>;

async function issueKey(credential: string): Promise<string> {
  const key = newApiKey();
  await relay.storage.credentials.addApiKey(credential, hashApiKey(key));
  return key;
}

beforeAll(async () => {
  hosts = await startMailHosts({
    'example.test': {},
    'strict.test': { rcpt: (address) => (address.startsWith('unknown') ? `550 5.1.1 <${address}>: user unknown` : undefined) },
  });
  mx = hosts.sinks['example.test']!;
  relay = await startTestRelay({ http: { admin_token: ADMIN_TOKEN }, delivery: hosts.delivery });
  await addSenderDomain(relay.storage, 'acme.test');
  await addSenderDomain(relay.storage, 'other.test');
  await addCredential(relay.storage, 'billing', ['acme.test']);
  await addCredential(relay.storage, 'marketing', ['other.test']);
  app = apiClient(relay.ports.http!, await issueKey('billing'));
  otherApp = apiClient(relay.ports.http!, await issueKey('marketing'));
  admin = apiClient(relay.ports.http!, ADMIN_TOKEN);
  anonymous = apiClient(relay.ports.http!);
});

afterAll(async () => {
  await relay?.stop();
  await hosts?.stop();
});

const received = (sink: Sink, rcpt: string) => sink.messages.find((m) => m.rcptTo.includes(rcpt));

describe('POST /v1/messages', () => {
  it('queues a composed message (202 with the queue id and each recipient), DKIM-signed, and delivers it', async () => {
    const res = await app('POST', '/v1/messages', {
      from: 'Billing <billing@acme.test>',
      to: ['alice@example.test'],
      cc: 'Carol <carol@example.test>',
      bcc: ['hidden@example.test'],
      reply_to: 'help@acme.test',
      subject: 'Invoice 42',
      text: 'Your invoice is attached.',
      html: '<p>Your invoice is attached.</p>',
      attachments: [{ filename: 'invoice.txt', content: Buffer.from('total: 42 EUR').toString('base64'), content_type: 'text/plain' }],
      headers: { 'X-Invoice': '42' },
    });
    expect(res.status).toBe(202);
    expect(res.body.id).toMatch(/^[0-9A-Z]+$/);
    expect(res.body.recipients).toEqual([
      { address: 'alice@example.test', status: 'queued' },
      { address: 'carol@example.test', status: 'queued' },
      { address: 'hidden@example.test', status: 'queued' },
    ]);
    const message = await waitFor(() => received(mx, 'hidden@example.test'), 'delivery to the MX sink');
    const raw = message.raw.toString();
    expect(message.mailFrom).toBe('billing@acme.test');
    expect(raw).toMatch(/^DKIM-Signature: .*d=acme\.test/m);
    expect(raw).toMatch(/^Subject: Invoice 42/m);
    expect(raw).toMatch(/^X-Invoice: 42/m);
    expect(raw).toMatch(/^Reply-To: help@acme\.test/m);
    expect(raw).toContain(Buffer.from('total: 42 EUR').toString('base64'));
    expect(raw).not.toMatch(/^Bcc:/im);

    const status = await waitFor(async () => {
      const r = await app('GET', `/v1/messages/${res.body.id}`);
      return r.body.recipients?.every((x: { status: string }) => x.status === 'delivered') && r;
    }, 'all recipients delivered');
    expect(status.status).toBe(200);
    const alice = status.body.recipients.find((r: { address: string }) => r.address === 'alice@example.test');
    expect(alice.last_code).toBe(250);
    expect(alice.events.map((e: { status: string }) => e.status)).toEqual(['queued', 'delivered']);
    expect(alice.events[1].response).toMatch(/^250 /);
  });

  it('answers 401 without a key and with an unknown key, and 403 for the admin token', async () => {
    const body = { from: 'billing@acme.test', to: 'a@example.test', subject: 's', text: 't' };
    const none = await anonymous('POST', '/v1/messages', body);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe('Bearer');
    expect((await apiClient(relay.ports.http!, 'rk_wrong')('POST', '/v1/messages', body)).status).toBe(401);
    const asAdmin = await admin('POST', '/v1/messages', body);
    expect(asAdmin.status).toBe(403);
    expect(asAdmin.body.error.message).toMatch(/app API key/);
  });

  it('refuses a sender domain the credential may not use with 403 naming "from" and the SMTP reply', async () => {
    const res = await app('POST', '/v1/messages', { from: 'news@other.test', to: 'a@example.test', subject: 's', text: 't' });
    expect(res.status).toBe(403);
    expect(res.body.error).toMatchObject({ status: 403, field: 'from' });
    expect(res.body.error.smtp_reply).toMatch(/^550 5\.7\.1 sender domain other\.test is not verified for credential billing/);
  });

  it('answers 422 naming the field for a missing or unknown member', async () => {
    const missing = await app('POST', '/v1/messages', { to: 'a@example.test', subject: 's', text: 't' });
    expect(missing.status).toBe(422);
    expect(missing.body.error.field).toBe('from');
    const unknown = await app('POST', '/v1/messages', {
      from: 'billing@acme.test',
      to: 'a@example.test',
      subject: 's',
      text: 't',
      tos: 'x',
    });
    expect(unknown.status).toBe(422);
    expect(unknown.body.error.field).toBe('tos');
    const noSubject = await app('POST', '/v1/messages', { from: 'billing@acme.test', to: 'a@example.test', text: 't' });
    expect(noSubject.body.error.field).toBe('subject');
  });

  it('rejects a suppressed recipient on its own, and answers 422 when no recipient is left', async () => {
    await relay.storage.suppressions.add({ address: 'gone@example.test', reason: 'test', credential: null });
    const partly = await app('POST', '/v1/messages', {
      from: 'billing@acme.test',
      to: ['gone@example.test', 'bob@example.test'],
      subject: 's',
      text: 't',
    });
    expect(partly.status).toBe(202);
    expect(partly.body.recipients).toEqual([
      {
        address: 'gone@example.test',
        status: 'rejected',
        reason: 'suppressed',
        smtp_reply: '550 5.1.1 recipient <gone@example.test> is on the suppression list',
      },
      { address: 'bob@example.test', status: 'queued' },
    ]);
    const none = await app('POST', '/v1/messages', { from: 'billing@acme.test', to: 'gone@example.test', subject: 's', text: 't' });
    expect(none.status).toBe(422);
    expect(none.body.error.field).toBe('to');
  });

  it('does not queue a retry with the same Idempotency-Key again', async () => {
    const body = { from: 'billing@acme.test', to: 'once@example.test', subject: 'once', text: 't' };
    const first = await app('POST', '/v1/messages', body, { 'idempotency-key': 'order-1001' });
    const second = await app('POST', '/v1/messages', body, { 'idempotency-key': 'order-1001' });
    expect(first.status).toBe(202);
    expect(second.status).toBe(202);
    expect(second.body.id).toBe(first.body.id);
    // Both answers are given after the commit, so the store already holds all there will be: one message.
    expect(await relay.storage.events.query({ recipient: 'once@example.test', status: 'queued', limit: 10 })).toHaveLength(1);
    await waitFor(() => received(mx, 'once@example.test'), 'delivery');
    expect(mx.messages.filter((m) => m.rcptTo.includes('once@example.test'))).toHaveLength(1);
    expect(received(mx, 'once@example.test')!.raw.toString()).not.toMatch(/^Idempotency-Key/im);
  });
});

describe('templates', () => {
  it('renders a stored template, escaping HTML, and names a missing variable in a 422', async () => {
    await relay.storage.templates.add({
      name: 'welcome',
      subject: 'Welcome, {{name}}!',
      text: 'Hello {{name}}, your plan: {{plan}}',
      html: '<p>Hello {{name}}</p>',
    });
    const res = await app('POST', '/v1/messages', {
      from: 'billing@acme.test',
      to: 'tpl@example.test',
      template: { name: 'welcome', variables: { name: 'Ann <script>', plan: 'Pro' } },
    });
    expect(res.status).toBe(202);
    const raw = (await waitFor(() => received(mx, 'tpl@example.test'), 'delivery')).raw.toString();
    expect(raw).toMatch(/^Subject: Welcome, Ann <script>!/m);
    expect(raw).toContain('Hello Ann <script>, your plan: Pro');
    expect(raw).toContain('<p>Hello Ann &lt;script&gt;</p>');

    const missing = await app('POST', '/v1/messages', {
      from: 'billing@acme.test',
      to: 'tpl@example.test',
      template: { name: 'welcome', variables: { name: 'Ann' } },
    });
    expect(missing.status).toBe(422);
    expect(missing.body.error.field).toBe('template.variables.plan');
    expect(missing.body.error.message).toMatch(/"plan"/);

    const unknown = await app('POST', '/v1/messages', { from: 'billing@acme.test', to: 'tpl@example.test', template: { name: 'nope' } });
    expect(unknown.status).toBe(422);
    expect(unknown.body.error.field).toBe('template.name');
  });

  it('uses the latest version unless one is named', async () => {
    await relay.storage.templates.add({ name: 'notice', subject: 'v1 {{x}}', text: 'one', html: null });
    await relay.storage.templates.add({ name: 'notice', subject: 'v2 {{x}}', text: 'two', html: null });
    await app('POST', '/v1/messages', {
      from: 'billing@acme.test',
      to: 'v2@example.test',
      template: { name: 'notice', variables: { x: 1 } },
    });
    await app('POST', '/v1/messages', {
      from: 'billing@acme.test',
      to: 'v1@example.test',
      template: { name: 'notice', version: 1, variables: { x: 1 } },
    });
    expect((await waitFor(() => received(mx, 'v2@example.test'), 'v2')).raw.toString()).toMatch(/^Subject: v2 1/m);
    expect((await waitFor(() => received(mx, 'v1@example.test'), 'v1')).raw.toString()).toMatch(/^Subject: v1 1/m);
  });
});

describe('POST /v1/messages/raw', () => {
  it('queues RFC 5322 bytes with their envelope, and names envelope.from when the sender is refused', async () => {
    const raw = 'From: billing@acme.test\r\nTo: raw@example.test\r\nSubject: raw one\r\n\r\nbody\r\n';
    const res = await app('POST', '/v1/messages/raw', {
      envelope: { from: 'billing@acme.test', to: ['raw@example.test'] },
      raw: Buffer.from(raw).toString('base64'),
      encoding: 'base64',
    });
    expect(res.status).toBe(202);
    const message = await waitFor(() => received(mx, 'raw@example.test'), 'delivery');
    expect(message.raw.toString()).toMatch(/^DKIM-Signature: /m);
    const refused = await app('POST', '/v1/messages/raw', { envelope: { from: 'x@other.test', to: ['raw@example.test'] }, raw });
    expect(refused.status).toBe(403);
    expect(refused.body.error.field).toBe('envelope.from');
  });
});

describe('GET /v1/events', () => {
  it('pages with a cursor, filters by status, domain and recipient, and shows an app only its own messages', async () => {
    await app('POST', '/v1/messages', {
      from: 'billing@acme.test',
      to: ['unknown@strict.test', 'known@strict.test'],
      subject: 's',
      text: 't',
    });
    await waitFor(async () => (await app('GET', '/v1/events?status=bounced&domain=strict.test')).body.events.length === 1, 'the bounce');
    const bounced = (await app('GET', '/v1/events?status=bounced')).body.events;
    expect(bounced).toHaveLength(1);
    expect(bounced[0]).toMatchObject({ recipient: 'unknown@strict.test', status: 'bounced', domain: 'strict.test', smtp_code: 550 });
    expect(bounced[0].response).toMatch(/user unknown/);

    const first = await app('GET', '/v1/events?limit=2');
    expect(first.body.events).toHaveLength(2);
    expect(first.body.has_more).toBe(true);
    const second = await app('GET', `/v1/events?limit=2&cursor=${first.body.next_cursor}`);
    expect(second.body.events[0].id).toBeGreaterThan(first.body.events[1].id);

    const byRecipient = await app('GET', '/v1/events?recipient=KNOWN@strict.test');
    expect(byRecipient.body.events.map((e: { status: string }) => e.status)).toContain('queued');
    expect(byRecipient.body.events.every((e: { recipient: string }) => e.recipient === 'known@strict.test')).toBe(true);

    expect((await otherApp('GET', '/v1/events')).body.events).toEqual([]);
    expect((await admin('GET', '/v1/events?recipient=known@strict.test')).body.events.length).toBeGreaterThan(0);
    const bad = await app('GET', '/v1/events?status=lost');
    expect(bad.status).toBe(422);
    expect(bad.body.error.field).toBe('querystring.status');
  });

  it("hides another credential's message (404)", async () => {
    const sent = await app('POST', '/v1/messages', { from: 'billing@acme.test', to: 'mine@example.test', subject: 's', text: 't' });
    expect((await otherApp('GET', `/v1/messages/${sent.body.id}`)).status).toBe(404);
    expect((await admin('GET', `/v1/messages/${sent.body.id}`)).status).toBe(200);
  });
});

describe('suppressions, domains, credentials', () => {
  it("adds, lists and removes suppressions, an app key only its own credential's", async () => {
    const added = await app('POST', '/v1/suppressions', { address: 'Stop@Example.test', reason: 'asked us to' });
    expect(added.status).toBe(201);
    expect(added.body).toMatchObject({ address: 'stop@example.test', reason: 'asked us to', credential: 'billing' });
    expect((await app('POST', '/v1/suppressions', { address: 'stop@example.test' })).status).toBe(409);
    expect((await app('GET', '/v1/suppressions')).body.suppressions.map((s: { address: string }) => s.address)).toContain(
      'stop@example.test',
    );
    expect((await otherApp('GET', '/v1/suppressions')).body.suppressions.map((s: { address: string }) => s.address)).not.toContain(
      'stop@example.test',
    );
    expect((await admin('GET', '/v1/suppressions')).body.suppressions).toContainEqual(
      expect.objectContaining({ address: 'stop@example.test', credential: 'billing' }),
    );
    expect((await otherApp('POST', '/v1/suppressions', { address: 'stop@example.test', credential: 'billing' })).status).toBe(403);
    expect((await otherApp('DELETE', '/v1/suppressions/stop@example.test')).status).toBe(404);
    expect((await app('DELETE', '/v1/suppressions/stop@example.test')).status).toBe(204);
    expect((await app('DELETE', '/v1/suppressions/stop@example.test')).status).toBe(404);
    const bad = await app('POST', '/v1/suppressions', { address: 'not an address' });
    expect(bad.status).toBe(422);
    expect(bad.body.error.field).toBe('address');
  });

  it('lists domains with their DNS status and credentials for the admin token only', async () => {
    await relay.storage.domains.setVerification('acme.test', true, { dkim: { status: 'found', message: 'ok' } });
    const domains = await admin('GET', '/v1/domains');
    expect(domains.status).toBe(200);
    expect(domains.body.domains.find((d: { name: string }) => d.name === 'acme.test')).toMatchObject({
      verified: true,
      checks: { dkim: { status: 'found' } },
    });
    const credentials = await admin('GET', '/v1/credentials');
    expect(credentials.body.credentials.map((c: { name: string }) => c.name)).toEqual(['billing', 'marketing']);
    expect(JSON.stringify(credentials.body)).not.toMatch(/scrypt|password/);
    const asApp = await app('GET', '/v1/domains');
    expect(asApp.status).toBe(403);
    expect(asApp.body.error.message).toMatch(/admin token/);
  });
});

describe('GET /v1/stats', () => {
  it('counts accepted, delivered and bounced per hour and per recipient domain, with the failing domains', async () => {
    const res = await admin('GET', '/v1/stats?granularity=hour');
    expect(res.status).toBe(200);
    expect(res.body.series.length).toBeGreaterThanOrEqual(24);
    expect(res.body.totals.accepted).toBeGreaterThan(5);
    expect(res.body.totals.bounced).toBe(1);
    expect(res.body.by_domain['strict.test']).toMatchObject({ bounced: 1 });
    expect(res.body.failing_domains[0]).toMatchObject({ domain: 'strict.test', bounced: 1, last_code: 550 });
    expect(res.body.series.reduce((n: number, b: { accepted: number }) => n + b.accepted, 0)).toBe(res.body.totals.accepted);
    expect(res.body.queue).toHaveProperty('recipients_pending');
    const day = await app('GET', `/v1/stats?granularity=day&from=${Date.now() - 3 * 86_400_000}`);
    expect(day.body.series.length).toBeGreaterThanOrEqual(3);
    expect(day.body.queue).toBeNull();
    expect((await otherApp('GET', '/v1/stats')).body.totals.accepted).toBe(0);
    const bad = await app('GET', '/v1/stats?from=yesterday');
    expect(bad.status).toBe(422);
    expect(bad.body.error.field).toBe('from');
  });
});

describe('health, metrics, OpenAPI', () => {
  it('answers /healthz and /readyz', async () => {
    expect((await anonymous('GET', '/healthz')).body).toEqual({ status: 'ok' });
    const ready = await anonymous('GET', '/readyz');
    expect(ready.status).toBe(200);
    expect(ready.body).toEqual({ status: 'ready', problems: [] });
  });

  it('exposes Prometheus metrics for acceptance, refusals, outcomes, the queue, SMTP sessions and webhooks', async () => {
    const smtp = nodemailer.createTransport({
      host: '127.0.0.1',
      port: relay.ports.submission,
      requireTLS: true,
      tls: { rejectUnauthorized: false },
      auth: { user: 'billing', pass: 'wrong-password' },
    });
    await expect(smtp.verify()).rejects.toThrow(/535/);
    // Recipient domains take their own label at a scrape, the busiest first; what they had before is in "other".
    const first = await anonymous('GET', '/metrics');
    expect(first.status).toBe(200);
    expect(first.body).toMatch(/^relay_delivery_outcomes_total\{status="delivered",domain="other"\} [1-9]/m);
    const sent = await app('POST', '/v1/messages', {
      from: 'billing@acme.test',
      to: ['metrics@example.test', 'unknown-metrics@strict.test'],
      subject: 'm',
      text: 't',
    });
    expect(sent.status).toBe(202);
    const res = await waitFor(async () => {
      const scrape = await anonymous('GET', '/metrics');
      return /domain="example\.test"/.test(scrape.body) && /domain="strict\.test"/.test(scrape.body) ? scrape : undefined;
    }, 'outcomes under their own domain labels');
    expect(res.status).toBe(200);
    const text = res.body as string;
    expect(text).toMatch(/^relay_messages_accepted_total [1-9]/m);
    expect(text).toMatch(/^relay_messages_rejected_total\{reason="sender_policy"\} [1-9]/m);
    expect(text).toMatch(/^relay_messages_rejected_total\{reason="suppressed"\} [1-9]/m);
    expect(text).toMatch(/^relay_delivery_outcomes_total\{status="delivered",domain="example\.test"\} 1/m);
    expect(text).toMatch(/^relay_delivery_outcomes_total\{status="bounced",domain="strict\.test"\} 1/m);
    expect(text).toMatch(/^relay_delivery_latency_seconds_count [1-9]/m);
    expect(text).toMatch(/^relay_queue_depth \d+/m);
    expect(text).toMatch(/^relay_queue_oldest_age_seconds /m);
    expect(text).toMatch(/^relay_webhook_backlog 0/m);
    expect(text).toMatch(/^relay_smtp_auth_failures_total 1$/m);
    expect(text).toMatch(/^relay_smtp_sessions_total\{listener="submission"\} 1$/m);
  });

  it('serves an OpenAPI 3 document describing the endpoints', async () => {
    const res = await anonymous('GET', '/openapi.json');
    expect(res.status).toBe(200);
    expect(res.body.openapi).toMatch(/^3\./);
    for (const path of [
      '/v1/messages',
      '/v1/messages/raw',
      '/v1/messages/{id}',
      '/v1/events',
      '/v1/suppressions',
      '/v1/domains',
      '/v1/stats',
    ]) {
      expect(res.body.paths).toHaveProperty([path]);
    }
    expect(res.body.paths['/v1/messages'].post.requestBody.content['application/json'].schema.required).toEqual(['from']);
  });
});
