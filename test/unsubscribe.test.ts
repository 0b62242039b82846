/**
 * One-click unsubscribe (RFC 8058) on a running relay: a credential with --list-unsubscribe, or
 * an API message with `unsubscribe: true`, reaches the MX with List-Unsubscribe (https link and
 * mailto) and List-Unsubscribe-Post for that recipient, covered by a DKIM signature that
 * verifies. GET shows a page and changes nothing; the POST and mail to the mailto address record
 * `unsubscribed` and suppress the address for that credential only.
 */
import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { headerText } from '../src/envelope/header.js';
import { hashApiKey, newApiKey } from '../src/submission/api-keys.js';
import { startDeliveringRelay, type DeliveringRelay } from './helpers/delivering-relay.js';
import { eventsOf } from './helpers/events.js';
import { sendInbound } from './helpers/feedback.js';
import { apiClient } from './helpers/http.js';
import { addCredential } from './helpers/relay.js';
import type { ReceivedMessage } from './helpers/sink.js';
import { RawSmtpClient } from './helpers/smtp-client.js';
import { waitFor } from './helpers/wait.js';

const require = createRequire(import.meta.url);
const { dkimVerify } = require('mailauth/lib/dkim/verify') as {
  dkimVerify: (
    msg: Buffer,
    opts: { resolver: (name: string, type: string) => Promise<unknown> },
  ) => Promise<{ results: { status: { result: string }; signingDomain: string; signingHeaders: { keys: string } }[] }>;
};

let env: DeliveringRelay;
let http: number;
const apiKey = newApiKey();

beforeAll(async () => {
  env = await startDeliveringRelay({
    listeners: [
      { name: 'smtps', host: '127.0.0.1', port: 0, tls: 'implicit' },
      { name: 'inbound', host: '127.0.0.1', port: 0, tls: 'starttls', kind: 'inbound' },
    ],
    bounces: { return_path_domain: 'bounces.acme.test' },
    http: { host: '127.0.0.1', port: 0, public_url: 'https://relay.acme.test/' },
  });
  http = env.relay.ports.http!;
  const news = await addCredential(env.relay.storage, 'news', ['acme.test']);
  await env.relay.storage.feedback.setListUnsubscribe('news', true);
  await env.relay.storage.credentials.addApiKey('app', hashApiKey(apiKey));
  const { client } = await RawSmtpClient.connect(env.relay.ports.smtps!, { implicitTls: true });
  await client.command('EHLO client.test');
  expect((await client.authPlain(news.username, news.password)).code).toBe(235);
  expect((await client.command('MAIL FROM:<news@acme.test>')).code).toBe(250);
  for (const rcpt of ['reader@example.net', 'reader2@example.net']) expect((await client.command(`RCPT TO:<${rcpt}>`)).code).toBe(250);
  const reply = await client.data('From: News <news@acme.test>\r\nTo: readers@acme.test\r\nSubject: This week\r\n\r\nNews.\r\n');
  expect(reply.code).toBe(250);
  client.close();
  await waitFor(() => env.sink.messages.length === 2, 'both copies at the MX');
});

afterAll(async () => {
  await env?.stop();
});

const copy = (rcpt: string) => waitFor(() => env.sink.messages.find((m) => m.rcptTo[0] === rcpt), `the copy for ${rcpt}`);

function unsubscribeHeaders(message: ReceivedMessage) {
  const header = headerText(message.raw).replace(/\r\n[ \t]+/g, ' ');
  const links = /^List-Unsubscribe: (.*)$/im.exec(header)?.[1];
  return {
    links,
    post: /^List-Unsubscribe-Post: (.*)$/im.exec(header)?.[1],
    https: /<https:\/\/relay\.acme\.test\/u\/([a-z2-7]+)>/.exec(links ?? '')?.[1],
    mailto: /<mailto:(u\+[a-z2-7]+@bounces\.acme\.test)>/.exec(links ?? '')?.[1],
  };
}

async function verifyDkim(message: ReceivedMessage) {
  const resolver = async (name: string, type: string) => {
    const value = env.dkim.get(name);
    if (type === 'TXT' && value) return [value.match(/.{1,255}/g)!];
    throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' });
  };
  return (await dkimVerify(message.raw, { resolver })).results;
}

const unsubscribed = (recipient: string) => eventsOf(env.relay.storage, { recipient, status: 'unsubscribed' });

describe('the headers', () => {
  it('gives each recipient its own links, signed by DKIM with both headers in h=', async () => {
    const [one, two] = [await copy('reader@example.net'), await copy('reader2@example.net')];
    const a = unsubscribeHeaders(one);
    const b = unsubscribeHeaders(two);
    expect(a.post).toBe('List-Unsubscribe=One-Click');
    expect(a.https).toBeDefined();
    expect(a.mailto).toBe(`u+${a.https}@bounces.acme.test`);
    expect(b.https).not.toBe(a.https);
    for (const message of [one, two]) {
      const results = await verifyDkim(message);
      expect(results.map((r) => r.status.result)).toEqual(['pass', 'pass']);
      const keys = results.map((r) => r.signingHeaders.keys.toLowerCase());
      expect(keys.some((k) => k.includes('list-unsubscribe-post') && /list-unsubscribe(?!-)/.test(k))).toBe(true);
    }
  });

  it('adds them to an API message with unsubscribe: true, and not to one without', async () => {
    const api = apiClient(http, apiKey);
    for (const [to, unsubscribe] of [
      ['api-yes@example.net', true],
      ['api-no@example.net', false],
    ] as const) {
      const sent = await api('POST', '/v1/messages', { from: 'billing@acme.test', to, subject: 'Hi', text: 'Hello', unsubscribe });
      expect(sent.status).toBe(202);
    }
    const yes = unsubscribeHeaders(await copy('api-yes@example.net'));
    expect(yes.post).toBe('List-Unsubscribe=One-Click');
    expect(yes.https).toBeDefined();
    expect((await verifyDkim(await copy('api-yes@example.net'))).map((r) => r.status.result)).toEqual(['pass', 'pass']);
    expect(unsubscribeHeaders(await copy('api-no@example.net')).links).toBeUndefined();
  });
});

describe('templates', () => {
  it('give a one-recipient message its {{unsubscribe_url}}, which unsubscribes like the header link', async () => {
    await env.relay.storage.templates.add({ name: 'digest', subject: 'Digest', text: 'Stop these: {{unsubscribe_url}}', html: null });
    const api = apiClient(http, apiKey);
    const sent = await api('POST', '/v1/messages', { from: 'billing@acme.test', to: 'tpl@example.net', template: { name: 'digest' } });
    expect(sent.status).toBe(202);
    const link = /Stop these: (https:\/\/relay\.acme\.test\/u\/[a-z2-7]+)/.exec(
      (await copy('tpl@example.net')).raw.toString().replace(/=\r\n/g, ''),
    )?.[1]; // quoted-printable soft breaks
    expect(link).toBeDefined();
    const response = await fetch(link!.replace('https://relay.acme.test', `http://127.0.0.1:${http}`), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'List-Unsubscribe=One-Click',
    });
    expect(response.status).toBe(200);
    expect(await unsubscribed('tpl@example.net')).toMatchObject([{ credential: 'app' }]);
    const several = await api('POST', '/v1/messages', {
      from: 'billing@acme.test',
      to: ['one@example.net', 'two@example.net'],
      template: { name: 'digest' },
    });
    expect(several.status).toBe(422);
    expect(several.body.error.field).toBe('template.variables.unsubscribe_url');
  });
});

describe('unsubscribing', () => {
  it('GET shows a page with a button and unsubscribes no one', async () => {
    const { https } = unsubscribeHeaders(await copy('reader@example.net'));
    const response = await fetch(`http://127.0.0.1:${http}/u/${https}`);
    expect(response.status).toBe(200);
    const page = await response.text();
    expect(page).toContain('reader@example.net');
    expect(page).toMatch(/<form method="post" action="\/u\/[a-z2-7]+">/);
    expect(page).toContain('name="List-Unsubscribe" value="One-Click"');
    expect(await unsubscribed('reader@example.net')).toEqual([]);
    expect(await env.relay.storage.suppressions.isSuppressed('reader@example.net', 'news')).toBe(false);
  });

  it('POST List-Unsubscribe=One-Click records unsubscribed and suppresses for that credential only', async () => {
    const { https } = unsubscribeHeaders(await copy('reader@example.net'));
    const response = await fetch(`http://127.0.0.1:${http}/u/${https}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'List-Unsubscribe=One-Click',
    });
    expect(response.status).toBe(200);
    expect(await unsubscribed('reader@example.net')).toMatchObject([{ credential: 'news', phase: 'async' }]);
    expect(await env.relay.storage.suppressions.isSuppressed('reader@example.net', 'news')).toBe(true);
    expect(await env.relay.storage.suppressions.isSuppressed('reader@example.net', 'app')).toBe(false);
  });

  it('takes mail to the mailto address the same way', async () => {
    const { mailto } = unsubscribeHeaders(await copy('reader2@example.net'));
    const reply = await sendInbound(env.relay.ports.inbound!, 'reader2@example.net', [mailto!], 'Subject: unsubscribe\r\n\r\n\r\n');
    expect(reply.code).toBe(250);
    expect(await unsubscribed('reader2@example.net')).toMatchObject([{ credential: 'news' }]);
    expect(
      (await env.relay.storage.suppressions.list({ credential: 'news' })).find((s) => s.address === 'reader2@example.net')?.reason,
    ).toBe('unsubscribe: mailto');
  });

  it('refuses a tampered token and a POST without the one-click body', async () => {
    const { https } = unsubscribeHeaders(await copy('api-yes@example.net'));
    const tampered = `${https!.slice(0, -1)}${https!.endsWith('a') ? 'b' : 'a'}`;
    const post = (token: string, body: string) =>
      fetch(`http://127.0.0.1:${http}/u/${token}`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body,
      });
    expect((await post(tampered, 'List-Unsubscribe=One-Click')).status).toBe(404);
    expect((await post(https!, 'something=else')).status).toBe(400);
    expect(await unsubscribed('api-yes@example.net')).toEqual([]);
  });
});
