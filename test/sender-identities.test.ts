/**
 * What a credential may send, set with the CLI and enforced at both doors of a running relay:
 * sender identities (envelope and header From/Sender), the Reply-To domains, sandbox
 * credentials with their recipient allowlist, and message tags (X-Relay-Tag or `tags`) carried
 * through to events and stats. SMTP with a raw client on the implicit-TLS listener, the HTTP
 * API with fetch, the compiled CLI as a process beside the relay.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, runCli } from './helpers/cli.js';
import { apiClient } from './helpers/http.js';
import { addSenderDomain, startTestRelay, storedBody, type TestRelay } from './helpers/relay.js';
import { RawSmtpClient, type Reply } from './helpers/smtp-client.js';
import { waitFor } from './helpers/wait.js';

const ADMIN_TOKEN = 'admin-token-for-governance';
let relay: TestRelay;
const cli = (...args: string[]) => runCli(['--config', relay.configFile, ...args], { cwd: relay.dir });
const text = (reply: Reply) => `${reply.code} ${reply.text}`;

interface Created {
  password: string;
  api_key: string;
}

async function create(...args: string[]): Promise<Created> {
  const result = await cli('credential', 'add', ...args, '--api-key', '--json');
  expect(result.code, result.stderr).toBe(0);
  return JSON.parse(result.stdout) as Created;
}

async function session(user: string, password: string): Promise<RawSmtpClient> {
  const { client } = await RawSmtpClient.connect(relay.ports.smtps!, { implicitTls: true });
  await client.command('EHLO app.test');
  expect((await client.authPlain(user, password)).code).toBe(235);
  return client;
}

const message = (headers: string) => `${headers}\r\nTo: someone@example.org\r\nSubject: test\r\n\r\nHello.\r\n`;

beforeAll(async () => {
  assertBuilt();
  relay = await startTestRelay({ http: { admin_token: ADMIN_TOKEN } });
  await addSenderDomain(relay.storage, 'acme.test');
  await addSenderDomain(relay.storage, 'brand.test');
});

afterAll(() => relay?.stop());

describe('sender identities and Reply-To domains', { timeout: 60_000 }, () => {
  let news: Created;

  beforeAll(async () => {
    news = await create(
      'news',
      '--domain',
      'acme.test',
      '--sender',
      'No-Reply@acme.test',
      '--sender',
      'billing@acme.test',
      '--reply-to-domain',
      'acme.test',
    );
    await create('shop', '--domain', 'acme.test', '--domain', 'brand.test');
  });

  it('are set and listed with the CLI', async () => {
    const outside = await cli('credential', 'add', 'bad', '--domain', 'acme.test', '--sender', 'x@brand.test');
    expect([outside.code, outside.stderr.trim()]).toEqual([1, "relay: sender x@brand.test is not in the credential's domains (acme.test)"]);
    const listed = await cli('sender', 'list', '--json');
    expect(JSON.parse(listed.stdout)).toEqual([
      { identity: 'acme.test', kind: 'domain', verified: true, credentials: ['shop'] },
      { identity: 'brand.test', kind: 'domain', verified: true, credentials: ['shop'] },
      { identity: 'billing@acme.test', kind: 'address', verified: true, credentials: ['news'] },
      { identity: 'no-reply@acme.test', kind: 'address', verified: true, credentials: ['news'] },
    ]);
    const table = (await cli('sender', 'list')).stdout;
    expect(table).toMatch(/^no-reply@acme\.test\s+address\s+yes\s+news$/m);
    expect(table).toMatch(/^acme\.test\s+domain\s+yes\s+shop$/m);
  });

  it('hold over SMTP: envelope sender, header From and Reply-To', async () => {
    const client = await session('news', news.password);
    try {
      expect(text(await client.command('MAIL FROM:<other@acme.test>'))).toBe(
        '550 5.7.1 sender <other@acme.test> is not a sender identity of credential news (envelope sender)',
      );
      expect((await client.command('MAIL FROM:<no-reply@ACME.test>')).code).toBe(250);
      expect((await client.command('RCPT TO:<someone@example.org>')).code).toBe(250);
      expect(text(await client.data(message('From: Other <other@acme.test>')))).toBe(
        '550 5.7.1 sender <other@acme.test> is not a sender identity of credential news (header From)',
      );
      await client.command('MAIL FROM:<no-reply@acme.test>');
      await client.command('RCPT TO:<someone@example.org>');
      expect(text(await client.data(message('From: billing@acme.test\r\nSender: other@acme.test')))).toMatch(
        /^550 5\.7\.1 sender <other@acme\.test> .* \(header Sender\)$/,
      );
      await client.command('MAIL FROM:<no-reply@acme.test>');
      await client.command('RCPT TO:<someone@example.org>');
      expect(text(await client.data(message('From: billing@acme.test\r\nReply-To: Help <help@evil.test>')))).toBe(
        '550 5.7.1 Reply-To <help@evil.test> is outside the domains credential news may name there (acme.test)',
      );
      await client.command('MAIL FROM:<no-reply@acme.test>');
      await client.command('RCPT TO:<someone@example.org>');
      expect((await client.data(message('From: billing@acme.test\r\nReply-To: help@acme.test'))).code).toBe(250);
    } finally {
      client.close();
    }
  });

  it('hold on the HTTP API with 403 naming the field', async () => {
    const app = apiClient(relay.ports.http!, news.api_key);
    const wrongFrom = await app('POST', '/v1/messages', { from: 'other@acme.test', to: 'a@example.org', subject: 's', text: 't' });
    expect(wrongFrom.status).toBe(403);
    expect(wrongFrom.body.error).toMatchObject({ field: 'from', message: expect.stringContaining('<other@acme.test>') });
    const wrongReplyTo = await app('POST', '/v1/messages', {
      from: 'billing@acme.test',
      to: 'a@example.org',
      reply_to: 'x@evil.test',
      subject: 's',
      text: 't',
    });
    expect([wrongReplyTo.status, wrongReplyTo.body.error.field]).toEqual([403, 'reply_to']);
    expect(wrongReplyTo.body.error.smtp_reply).toMatch(/^550 5\.7\.1 Reply-To <x@evil\.test>/);
    const raw = await app('POST', '/v1/messages/raw', {
      envelope: { from: 'other@acme.test', to: ['a@example.org'] },
      raw: message('From: billing@acme.test'),
    });
    expect([raw.status, raw.body.error.field]).toEqual([403, 'envelope.from']);
    const ok = await app('POST', '/v1/messages', {
      from: 'billing@acme.test',
      to: 'a@example.org',
      reply_to: 'h@acme.test',
      subject: 's',
      text: 't',
    });
    expect(ok.status).toBe(202);
  });

  it('are dropped with --no-sender, and a running relay follows', async () => {
    const updated = await cli('credential', 'update', 'news', '--no-sender', '--no-reply-to-domain', '--json');
    expect(updated.code, updated.stderr).toBe(0);
    expect(JSON.parse(updated.stdout)).toMatchObject({ senders: [], reply_to_domains: [], sandbox: false });
    const client = await session('news', news.password);
    try {
      await waitFor(async () => {
        const reply = await client.command('MAIL FROM:<other@acme.test>');
        if (reply.code === 250) await client.command('RSET');
        return reply.code === 250;
      }, 'any acme.test sender accepted');
      // The domain rule still holds.
      expect(text(await client.command('MAIL FROM:<x@brand.test>'))).toMatch(/^550 5\.7\.1 sender domain brand\.test is not verified/);
    } finally {
      client.close();
    }
  });
});

describe('sandbox credentials', { timeout: 60_000 }, () => {
  let dev: Created;

  beforeAll(async () => {
    dev = await create(
      'dev',
      '--domain',
      'acme.test',
      '--sandbox',
      '--allow-recipient',
      'QA@example.org',
      '--allow-recipient',
      '@staging.test',
    );
  });

  it('reach only their allowlist over SMTP, refused at RCPT with "sandbox"', async () => {
    const client = await session('dev', dev.password);
    try {
      expect((await client.command('MAIL FROM:<dev@acme.test>')).code).toBe(250);
      expect((await client.command('RCPT TO:<qa@example.org>')).code).toBe(250);
      expect((await client.command('RCPT TO:<anyone@staging.test>')).code).toBe(250);
      expect(text(await client.command('RCPT TO:<customer@example.org>'))).toBe(
        '550 5.7.1 recipient <customer@example.org> is not on the allowlist of sandbox credential dev',
      );
      expect(text(await client.command('RCPT TO:<x@sub.staging.test>'))).toMatch(/^550 5\.7\.1 .*sandbox/);
      expect((await client.data(message('From: dev@acme.test'))).code).toBe(250);
    } finally {
      client.close();
    }
  });

  it('are refused on the HTTP API with 403 naming the recipient', async () => {
    const app = apiClient(relay.ports.http!, dev.api_key);
    const json = await app('POST', '/v1/messages', {
      from: 'dev@acme.test',
      to: ['qa@example.org'],
      cc: ['a@staging.test', 'customer@example.org'],
      subject: 's',
      text: 't',
    });
    expect(json.status).toBe(403);
    expect(json.body.error).toMatchObject({ field: 'cc[1]', smtp_reply: expect.stringMatching(/^550 5\.7\.1 .*sandbox credential dev/) });
    const raw = await app('POST', '/v1/messages/raw', {
      envelope: { from: 'dev@acme.test', to: ['qa@example.org', 'customer@example.org'] },
      raw: message('From: dev@acme.test'),
    });
    expect([raw.status, raw.body.error.field]).toEqual([403, 'envelope.to[1]']);
    const ok = await app('POST', '/v1/messages', {
      from: 'dev@acme.test',
      to: ['qa@example.org', 'b@staging.test'],
      subject: 's',
      text: 't',
    });
    expect(ok.status).toBe(202);
  });

  it('change their allowlist with update, and leave the sandbox with --no-sandbox', async () => {
    const updated = await cli('credential', 'update', 'dev', '--allow-recipient', 'customer@example.org', '--json');
    expect(JSON.parse(updated.stdout)).toMatchObject({ sandbox: true, allowed_recipients: ['customer@example.org'] });
    const app = apiClient(relay.ports.http!, dev.api_key);
    const send = (to: string) => app('POST', '/v1/messages', { from: 'dev@acme.test', to, subject: 's', text: 't' });
    await waitFor(async () => (await send('customer@example.org')).status === 202, 'the new allowlist');
    expect((await send('qa@example.org')).status).toBe(403);
    expect((await cli('credential', 'update', 'dev', '--no-sandbox')).stdout).not.toMatch(/Sandbox/);
    await waitFor(async () => (await send('qa@example.org')).status === 202, 'the sandbox lifted');
  });
});

describe('tags', { timeout: 60_000 }, () => {
  let shop: Created;
  const admin = () => apiClient(relay.ports.http!, ADMIN_TOKEN);

  beforeAll(async () => {
    shop = await create('tagger', '--domain', 'acme.test');
  });

  it('come from X-Relay-Tag over SMTP, are removed before signing and carried on the events', async () => {
    const client = await session('tagger', shop.password);
    try {
      await client.command('MAIL FROM:<shop@acme.test>');
      await client.command('RCPT TO:<buyer@example.org>');
      const queued = await client.data(message('From: shop@acme.test\r\nX-Relay-Tag: welcome, eu\r\nX-Relay-Tag:\r\n promo'));
      expect(queued.code).toBe(250);
      const queueId = /queued as (\S+)/.exec(queued.text)![1]!;
      const body = (await storedBody(relay.storage.queue, queueId))!.toString();
      expect(body).not.toMatch(/X-Relay-Tag/i);
      expect(body).toMatch(/^DKIM-Signature:/m);
      const [event] = await relay.storage.events.query({ queueId, limit: 10 });
      expect(event!.tags).toEqual(['welcome', 'eu', 'promo']);

      await client.command('MAIL FROM:<shop@acme.test>');
      await client.command('RCPT TO:<buyer@example.org>');
      expect(text(await client.data(message('From: shop@acme.test\r\nX-Relay-Tag: ok, not ok!')))).toBe(
        '550 5.5.4 X-Relay-Tag "not ok!" is not a tag: 1 to 40 letters, digits and . _ : - (starting with a letter or digit)',
      );
      await client.command('MAIL FROM:<shop@acme.test>');
      await client.command('RCPT TO:<buyer@example.org>');
      expect(text(await client.data(message('From: shop@acme.test\r\nX-Relay-Tag: a, b, c, d, e, f')))).toBe(
        '550 5.5.4 at most 5 tags per message, not 6',
      );
    } finally {
      client.close();
    }
  });

  it('come from `tags` on the API, with 400 naming the field when bad, and break stats down', async () => {
    const app = apiClient(relay.ports.http!, shop.api_key);
    const sent = await app('POST', '/v1/messages', {
      from: 'shop@acme.test',
      to: 'a@example.org',
      subject: 's',
      text: 't',
      tags: ['welcome'],
    });
    expect(sent.status).toBe(202);
    const raw = await app('POST', '/v1/messages/raw', {
      envelope: { from: 'shop@acme.test', to: ['b@example.org'] },
      raw: message('From: shop@acme.test'),
      tags: ['receipt', 'eu'],
    });
    expect(raw.status).toBe(202);
    const events = (await app('GET', `/v1/events?recipient=b@example.org`)).body.events;
    expect(events.map((e: { tags: string[] }) => e.tags)).toEqual([['receipt', 'eu']]);

    const bad = await app('POST', '/v1/messages', { from: 'shop@acme.test', to: 'a@example.org', subject: 's', text: 't', tags: ['a,b'] });
    expect([bad.status, bad.body.error.field]).toEqual([400, 'tags']);
    const many = await app('POST', '/v1/messages/raw', {
      envelope: { from: 'shop@acme.test', to: ['b@example.org'] },
      raw: message('From: shop@acme.test'),
      tags: ['a', 'b', 'c', 'd', 'e', 'f'],
    });
    expect([many.status, many.body.error.field, many.body.error.message]).toEqual([400, 'tags', 'at most 5 tags per message, not 6']);

    const welcome = (await admin()('GET', '/v1/stats?tag=welcome')).body;
    expect(welcome.totals.accepted).toBe(2);
    expect(welcome.by_tag).toEqual({ welcome: expect.objectContaining({ accepted: 2 }) });
    const all = (await admin()('GET', '/v1/stats')).body;
    expect(Object.fromEntries(Object.entries(all.by_tag as Record<string, { accepted: number }>).map(([t, c]) => [t, c.accepted]))).toEqual(
      {
        eu: 2,
        promo: 1,
        receipt: 1,
        welcome: 2,
      },
    );
    const mine = (await app('GET', '/v1/stats?tag=eu')).body;
    expect(mine.totals.accepted).toBe(2);

    const stats = await cli('stats', '--tag', 'eu', '--json');
    expect(stats.code, stats.stderr).toBe(0);
    expect(JSON.parse(stats.stdout)).toMatchObject({ tag: 'eu', by_status: { queued: 2 }, by_domain: { 'example.org': { queued: 2 } } });
  });
});
