/**
 * Idempotent submission: a client retrying after a timeout gets 250 with the original queue id
 * and the mail is queued once, by Message-ID (same credential and envelope) or by an
 * Idempotency-Key header (stripped before signing); durable across a restart.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/load.js';
import { startRelay, type RunningRelay } from '../src/relay.js';
import { RawSmtpClient } from './helpers/smtp-client.js';
import { addCredential, addSenderDomain, startTestRelay, storedBody, type TestRelay } from './helpers/relay.js';

let relay: TestRelay;
let restarted: RunningRelay | undefined;
let creds: { username: string; password: string };
let otherCreds: { username: string; password: string };

beforeAll(async () => {
  relay = await startTestRelay();
  await addSenderDomain(relay.storage, 'acme.test');
  creds = await addCredential(relay.storage, 'billing-app', ['acme.test']);
  otherCreds = await addCredential(relay.storage, 'other-app', ['acme.test']);
});

afterAll(async () => {
  await restarted?.stop();
});

async function send(port: number, message: string, recipients = ['r@example.net'], login = creds) {
  const { client } = await RawSmtpClient.connect(port, { implicitTls: true });
  await client.command('EHLO app.test');
  expect((await client.authPlain(login.username, login.password)).code).toBe(235);
  await client.command('MAIL FROM:<billing@acme.test>');
  for (const rcpt of recipients) await client.command(`RCPT TO:<${rcpt}>`);
  const reply = await client.data(message);
  client.close();
  expect(reply.code).toBe(250);
  return /queued as (\S+)/.exec(reply.text)![1]!;
}

const withId = (id: string, extra = '') =>
  `From: billing@acme.test\r\nMessage-ID: <${id}@acme.test>\r\n${extra}Subject: hi\r\n\r\nbody\r\n`;
const queued = async (storage: RunningRelay['storage']) => (await storage.queue.pending()).length;

describe('idempotency', () => {
  it('answers a repeated Message-ID from the same credential and envelope with the original queue id, queuing once', async () => {
    const port = relay.ports.smtps!;
    const before = await queued(relay.storage);
    const first = await send(port, withId('retry-1'));
    expect(await send(port, withId('retry-1'))).toBe(first);
    expect(await queued(relay.storage)).toBe(before + 1);
    // The same message sent in another recipient batch, or by another credential, is new mail.
    expect(await send(port, withId('retry-1'), ['other@example.net'])).not.toBe(first);
    expect(await send(port, withId('retry-1'), ['r@example.net'], otherCreds)).not.toBe(first);
    expect(await queued(relay.storage)).toBe(before + 3);
  });

  it('queues one message when two retries race', async () => {
    const port = relay.ports.smtps!;
    const before = await queued(relay.storage);
    const ids = await Promise.all([send(port, withId('race')), send(port, withId('race')), send(port, withId('race'))]);
    expect(new Set(ids).size).toBe(1);
    expect(await queued(relay.storage)).toBe(before + 1);
  });

  it('honours an Idempotency-Key header and strips it before signing', async () => {
    const port = relay.ports.smtps!;
    const first = await send(port, withId('k-1', 'Idempotency-Key: order-4711\r\n'));
    expect(await send(port, withId('k-2', 'idempotency-key:  order-4711\r\n'))).toBe(first);
    const body = (await storedBody(relay.storage.queue, first))!.toString();
    expect(body).not.toMatch(/idempotency-key/i);
    expect(body).toContain('Message-ID: <k-1@acme.test>');
  });

  it('remembers accepted submissions across a restart', async () => {
    const first = await send(relay.ports.smtps!, withId('durable'));
    await relay.stop();
    restarted = await startRelay(loadConfig(relay.configFile));
    expect(await send(restarted.ports.smtps!, withId('durable'))).toBe(first);
    expect((await restarted.storage.queue.pending()).filter((e) => e.messageId === '<durable@acme.test>')).toHaveLength(1);
  });
});
