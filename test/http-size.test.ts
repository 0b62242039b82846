/**
 * One message size limit for both doors: limits.max_message_bytes bounds the message as it will
 * be queued, whether it came over SMTP, as raw bytes to the API, or composed from JSON. Over it,
 * the API answers 413 with its JSON error (and SMTP's reply, 552 5.3.4) and queues nothing.
 */
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashApiKey, newApiKey } from '../src/submission/api-keys.js';
import { apiClient } from './helpers/http.js';
import { addCredential, addSenderDomain, startTestRelay, type TestRelay } from './helpers/relay.js';

const LIMIT = 1024 * 1024;
let relay: TestRelay;
let api: ReturnType<typeof apiClient>;
let creds: { username: string; password: string };

beforeAll(async () => {
  relay = await startTestRelay({ limits: { max_message_bytes: LIMIT } });
  await addSenderDomain(relay.storage, 'acme.test');
  creds = await addCredential(relay.storage, 'app', ['acme.test']);
  const key = newApiKey();
  await relay.storage.credentials.addApiKey('app', hashApiKey(key));
  api = apiClient(relay.ports.http!, key);
});

afterAll(async () => {
  await relay?.stop();
});

const queued = async () => (await relay.storage.queue.pending()).length;
/** A message of about `bytes` bytes in 76-character lines. */
const messageOf = (bytes: number) =>
  `From: app@acme.test\r\nSubject: size\r\n\r\n${'x'
    .repeat(74)
    .concat('\r\n')
    .repeat(Math.ceil(bytes / 76))}`;

function expectTooBig(res: { status: number; body: any }) {
  expect(res.status, JSON.stringify(res.body).slice(0, 300)).toBe(413);
  expect(res.body.error.status).toBe(413);
  expect(typeof res.body.error.message).toBe('string');
}

describe('max_message_bytes on the HTTP API', () => {
  it("refuses a raw message over the limit with 413 and SMTP's 552 5.3.4, and queues nothing", async () => {
    const before = await queued();
    const res = await api('POST', '/v1/messages/raw', {
      envelope: { from: 'app@acme.test', to: ['r@example.net'] },
      raw: messageOf(1.4 * LIMIT),
    });
    expectTooBig(res);
    expect(res.body.error.smtp_reply).toMatch(/^552 5\.3\.4 /);
    expect(await queued()).toBe(before);
  });

  it('refuses a composed message whose final size is over the limit (a 0.8 MB attachment grows by base64)', async () => {
    const before = await queued();
    const attachment = Buffer.alloc(0.8 * LIMIT, 7).toString('base64');
    const res = await api('POST', '/v1/messages', {
      from: 'app@acme.test',
      to: 'r@example.net',
      subject: 'big',
      text: 'see attached',
      attachments: [{ filename: 'data.bin', content: attachment }],
    });
    expectTooBig(res);
    expect(res.body.error.smtp_reply).toMatch(/^552 5\.3\.4 /);
    expect(await queued()).toBe(before);
  });

  it('refuses a request body far over the limit with the same JSON error before reading it all', async () => {
    const res = await api('POST', '/v1/messages/raw', {
      envelope: { from: 'app@acme.test', to: ['r@example.net'] },
      raw: Buffer.from(messageOf(2 * LIMIT)).toString('base64'),
      encoding: 'base64',
    });
    expectTooBig(res);
  });

  it('accepts messages under the limit through both API doors', async () => {
    const raw = await api('POST', '/v1/messages/raw', {
      envelope: { from: 'app@acme.test', to: ['r@example.net'] },
      raw: messageOf(0.9 * LIMIT),
    });
    expect(raw.status).toBe(202);
    const composed = await api('POST', '/v1/messages', {
      from: 'app@acme.test',
      to: 'r@example.net',
      subject: 's',
      text: 'x'.repeat(0.5 * LIMIT),
    });
    expect(composed.status).toBe(202);
  });

  it('is the same limit SMTP enforces', async () => {
    const transport = nodemailer.createTransport({
      host: '127.0.0.1',
      port: relay.ports.smtps,
      secure: true,
      auth: { user: creds.username, pass: creds.password },
      tls: { rejectUnauthorized: false },
    });
    await expect(
      transport.sendMail({ raw: messageOf(1.4 * LIMIT), envelope: { from: 'app@acme.test', to: ['r@example.net'] } }),
    ).rejects.toThrow(/552/);
    await expect(
      transport.sendMail({ raw: messageOf(0.9 * LIMIT), envelope: { from: 'app@acme.test', to: ['r@example.net'] } }),
    ).resolves.toBeDefined();
  });
});
