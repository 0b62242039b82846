/**
 * Feedback from the receiving side, end to end on loopback: Relay delivers with a VERP return
 * path to a test MX, then the bounces, complaints and auto-replies that real providers send
 * (test/fixtures/feedback) come back to Relay's inbound listener over SMTP. Each becomes an
 * async event on the right recipient, a webhook and a suppression for the credential that sent;
 * auto-replies and forged reports change nothing. The inbound listener answers only after the
 * report is applied, so every check right after its 250 is final.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDeliveringRelay, type DeliveringRelay } from './helpers/delivering-relay.js';
import { eventsOf } from './helpers/events.js';
import { feedbackFixture, sendInbound } from './helpers/feedback.js';
import { apiClient } from './helpers/http.js';
import type { ReceivedMessage } from './helpers/sink.js';
import { RawSmtpClient } from './helpers/smtp-client.js';
import { startWebhookReceiver, type WebhookReceiver } from './helpers/webhook-receiver.js';
import { waitFor } from './helpers/wait.js';

const ADMIN = 'admin-token-feedback-0123456789';
const RECIPIENTS = ['rfc3464', 'gmail', 'outlook', 'yahoo', 'qmail', 'arf', 'auto', 'forged'].map((n) => `${n}@example.net`);

let env: DeliveringRelay;
let receiver: WebhookReceiver;
let inbound: number;
const delivered = new Map<string, ReceivedMessage>();

beforeAll(async () => {
  env = await startDeliveringRelay({
    listeners: [
      { name: 'smtps', host: '127.0.0.1', port: 0, tls: 'implicit' },
      { name: 'inbound', host: '127.0.0.1', port: 0, tls: 'starttls', kind: 'inbound' },
    ],
    bounces: { return_path_domain: 'bounces.acme.test', feedback_addresses: ['fbl@acme.test'] },
    http: { host: '127.0.0.1', port: 0, admin_token: ADMIN, public_url: 'https://relay.acme.test' },
    webhooks: { poll_interval: '100ms', retry_schedule: ['1s'] },
  });
  inbound = env.relay.ports.inbound!;
  receiver = await startWebhookReceiver();
  await env.relay.storage.webhooks.add(receiver.url, 'whsec-feedback', ['bounced', 'complained']);
  await send(RECIPIENTS);
  await send(['single@example.net']);
  await waitFor(() => env.sink.messages.length === RECIPIENTS.length + 1, 'every copy at the MX');
  for (const message of env.sink.messages) delivered.set(message.rcptTo[0]!, message);
});

afterAll(async () => {
  await env?.stop();
  await receiver?.stop();
});

async function send(to: string[]) {
  const client = await env.session();
  expect((await client.command('MAIL FROM:<billing@acme.test>')).code).toBe(250);
  for (const rcpt of to) expect((await client.command(`RCPT TO:<${rcpt}>`)).code).toBe(250);
  const reply = await client.data(
    `From: Billing <billing@acme.test>\r\nTo: ${to.join(', ')}\r\nSubject: Your order\r\n\r\nThis is the message body.\r\n`,
  );
  expect(reply.code).toBe(250);
  client.close();
}

const copy = (rcpt: string) => delivered.get(rcpt)!;
const asyncEvents = async (recipient: string) => (await eventsOf(env.relay.storage, { recipient })).filter((e) => e.phase === 'async');
const suppressionOf = async (address: string) =>
  (await env.relay.storage.suppressions.list({ credential: 'app' })).find((s) => s.address === address);

/** Sends the fixture for `rcpt` to the inbound listener and expects it taken. */
async function report(fixture: string, rcpt: string, to: string, extra: Record<string, string> = {}) {
  const reply = await sendInbound(inbound, '', [to], feedbackFixture(fixture, copy(rcpt), extra));
  expect(reply.code, reply.text).toBe(250);
}

describe('return path', () => {
  it('delivers each recipient in its own transaction with a signed VERP envelope sender', () => {
    const senders = RECIPIENTS.map((r) => copy(r).mailFrom);
    for (const sender of senders) expect(sender).toMatch(/^b\+[0-9a-z]+-[0-9a-z]+-[a-z2-7]{16}@bounces\.acme\.test$/);
    expect(new Set(senders).size).toBe(RECIPIENTS.length);
    for (const r of RECIPIENTS) expect(copy(r).rcptTo).toEqual([r]);
    // The header From stays the sender's.
    expect(copy('gmail@example.net').raw.toString()).toMatch(/^From: Billing <billing@acme\.test>/m);
  });
});

describe('bounces after acceptance', () => {
  it.each([
    ['rfc3464-dsn.eml', 'rfc3464@example.net', 550],
    ['gmail-dsn.eml', 'gmail@example.net', null],
    ['yahoo-bounce.eml', 'yahoo@example.net', 554],
    ['qmail-bounce.eml', 'qmail@example.net', null],
  ])('%s to the return path: a bounced (async) event and a suppression for the sending credential', async (fixture, rcpt, code) => {
    await report(fixture, rcpt, copy(rcpt).mailFrom);
    const [event, ...more] = await asyncEvents(rcpt);
    expect(more).toEqual([]);
    expect(event).toMatchObject({ status: 'bounced', phase: 'async', credential: 'app', smtpCode: code, category: 'bad_mailbox' });
    expect((await suppressionOf(rcpt))?.reason).toMatch(/^bounce: /);
    expect(await env.relay.storage.suppressions.isSuppressed(rcpt, 'app')).toBe(true);
    expect(await env.relay.storage.suppressions.isSuppressed(rcpt, 'another-app')).toBe(false);
  });

  it('matches an Outlook NDR without a token by the Message-ID it quotes', async () => {
    await report('outlook-ndr.eml', 'outlook@example.net', 'fbl@acme.test');
    const [event] = await asyncEvents('outlook@example.net');
    expect(event).toMatchObject({
      status: 'bounced',
      smtpCode: 550,
      category: 'bad_mailbox',
      queueId: (await queueIdOf('outlook@example.net'))!,
    });
    expect(await suppressionOf('outlook@example.net')).toBeDefined();
  });
});

describe('complaints', () => {
  it('turns an RFC 5965 abuse report into a complained event and a suppression', async () => {
    await report('arf-abuse.eml', 'arf@example.net', 'fbl@acme.test');
    const [event] = await asyncEvents('arf@example.net');
    expect(event).toMatchObject({ status: 'complained', phase: 'async', credential: 'app', category: 'abuse' });
    expect((await suppressionOf('arf@example.net'))?.reason).toBe('complaint: abuse from SomeGenerator/1.0');
  });

  it('takes a redacted feedback-loop report for a message with one recipient', async () => {
    await report('arf-redacted.eml', 'single@example.net', 'fbl@acme.test');
    expect(await asyncEvents('single@example.net')).toMatchObject([{ status: 'complained' }]);
    expect(await suppressionOf('single@example.net')).toBeDefined();
  });

  it('announces them to webhooks and on /v1/events with phase async', async () => {
    const hooks = await waitFor(() => {
      const bodies = receiver.received.map((h) => JSON.parse(h.body) as Record<string, unknown>);
      return bodies.some((b) => b.type === 'complained') && bodies.filter((b) => b.type === 'bounced').length >= 5 ? bodies : undefined;
    }, 'webhooks for the bounces and complaints');
    expect(hooks.find((h) => h.recipient === 'arf@example.net')).toMatchObject({ type: 'complained', phase: 'async' });
    expect(hooks.find((h) => h.recipient === 'yahoo@example.net')).toMatchObject({ type: 'bounced', phase: 'async', smtp_code: 554 });
    const api = apiClient(env.relay.ports.http!, ADMIN);
    const { body } = await api('GET', '/v1/events?status=complained');
    expect(body.events.map((e: { recipient: string; phase: string }) => [e.recipient, e.phase]).sort()).toEqual([
      ['arf@example.net', 'async'],
      ['single@example.net', 'async'],
    ]);
  });
});

describe('what is ignored or dropped', () => {
  it('ignores an auto-reply to the return path', async () => {
    await report('auto-reply.eml', 'auto@example.net', copy('auto@example.net').mailFrom);
    expect(await asyncEvents('auto@example.net')).toEqual([]);
    expect(await suppressionOf('auto@example.net')).toBeUndefined();
  });

  it('drops forged reports: a token Relay never signed, a Message-ID it never sent, a bad token as the envelope recipient', async () => {
    const before = await env.relay.storage.suppressions.list();
    const real = copy('forged@example.net').mailFrom;
    const forgedToken = real.replace(/-[a-z2-7]{16}@/, '-aaaaaaaaaaaaaaaa@');
    await report('forged-arf.eml', 'forged@example.net', 'fbl@acme.test', { FORGED_RETURN_PATH: forgedToken });
    await report('forged-dsn.eml', 'forged@example.net', 'fbl@acme.test');
    await report('rfc3464-dsn.eml', 'forged@example.net', forgedToken);
    expect(await asyncEvents('forged@example.net')).toEqual([]);
    expect(await env.relay.storage.suppressions.list()).toEqual(before);
  });

  it('counts what came back on /metrics', async () => {
    const metrics = await (await fetch(`http://127.0.0.1:${env.relay.ports.http}/metrics`)).text();
    expect(metrics).toMatch(/relay_feedback_reports_total\{kind="auto-reply",result="ignored"\} 1/);
    expect(metrics).toMatch(/relay_feedback_reports_total\{kind="feedback-report",result="applied"\} 2/);
    expect(metrics).toMatch(/relay_feedback_reports_total\{kind="feedback-report",result="forged"\} 1/);
  });

  it('refuses addresses that are not its own with 550 5.7.1, and offers STARTTLS but no AUTH', async () => {
    const { client } = await RawSmtpClient.connect(inbound, { implicitTls: false });
    const ehlo = await client.command('EHLO mx.example.net');
    expect(ehlo.lines.join('\n')).toMatch(/STARTTLS/);
    expect(ehlo.lines.join('\n')).not.toMatch(/AUTH/);
    expect((await client.command('AUTH PLAIN AGFwcABwYXNz')).code).toBeGreaterThanOrEqual(500);
    client.close();
    for (const to of ['someone@example.org', 'fbl@other.test', 'x+token@bounces.acme.test', 'postmaster@acme.test']) {
      const reply = await sendInbound(inbound, 'sender@example.org', [to], 'Subject: hi\r\n\r\nhi\r\n');
      expect(`${reply.code} ${reply.text.split(' ')[0]}`).toBe('550 5.7.1');
    }
  });
});

async function queueIdOf(recipient: string) {
  return (await eventsOf(env.relay.storage, { recipient, status: 'delivered' }))[0]?.queueId;
}
