/**
 * What one credential's mistakes and failures may do to others, and to itself: a revoke stops a
 * session already logged in, failed bearer tokens are limited per IP like failed logins, an
 * Idempotency-Key reused for another envelope is a conflict rather than a silent "sent", and a
 * bounce caused by our own envelope sender never suppresses the recipient.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashApiKey, newApiKey } from '../src/submission/api-keys.js';
import { startDeliveringRelay, type DeliveringRelay } from './helpers/delivering-relay.js';
import { apiClient } from './helpers/http.js';
import { waitFor } from './helpers/wait.js';

let env: DeliveringRelay;
const apiKey = newApiKey();
/** The MX refuses one envelope sender as a syntax error, as some hosts do with odd local parts. */
const sink = { mail: (address: string) => (address.startsWith('odd.') ? '553 5.1.7 sender address syntax rejected' : undefined) };

beforeAll(async () => {
  env = await startDeliveringRelay({ limits: { auth_failures_per_ip: 3 } }, { sink });
  await env.relay.storage.credentials.addApiKey('app', hashApiKey(apiKey));
});

afterAll(async () => {
  await env?.stop();
});

describe('tenancy and refusals', () => {
  it('refuses MAIL FROM on a session that logged in before its credential was revoked', async () => {
    const client = await env.session();
    try {
      expect((await client.command('MAIL FROM:<app@acme.test>')).code).toBe(250);
      await client.command('RSET');
      await env.relay.storage.credentials.revoke('app');
      const refused = await waitFor(async () => {
        const reply = await client.command('MAIL FROM:<app@acme.test>');
        if (reply.code === 250) await client.command('RSET');
        return reply.code === 250 ? undefined : reply;
      }, 'MAIL FROM refused after the revoke');
      expect(`${refused.code} ${refused.text}`).toBe('550 5.7.8 credential app has been revoked');
    } finally {
      client.close();
    }
  });

  it('limits failed bearer tokens per IP with 429 and Retry-After', async () => {
    const wrong = apiClient(env.relay.ports.http!, 'not-a-key');
    for (let i = 0; i < 3; i++) expect((await wrong('GET', '/v1/events')).status).toBe(401);
    const limited = await wrong('GET', '/v1/events');
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(limited.body.error.field).toBe('authorization');
  });
});

describe('idempotency conflicts and our own envelope', () => {
  let key: string;
  let app: ReturnType<typeof apiClient>;

  beforeAll(async () => {
    // A fresh relay: the one above has a revoked credential and a limited IP.
    await env.stop();
    env = await startDeliveringRelay({}, { sink });
    key = newApiKey();
    await env.relay.storage.credentials.addApiKey('app', hashApiKey(key));
    app = apiClient(env.relay.ports.http!, key);
  });

  it('answers 409 when an Idempotency-Key comes back with other recipients, and queues nothing', async () => {
    const headers = { 'idempotency-key': 'invoice-42' };
    const first = await app('POST', '/v1/messages', { from: 'app@acme.test', to: ['one@example.net'], subject: 's', text: 't' }, headers);
    expect(first.status).toBe(202);
    const replay = await app('POST', '/v1/messages', { from: 'app@acme.test', to: ['one@example.net'], subject: 's', text: 't' }, headers);
    expect([replay.status, replay.body.id]).toEqual([202, first.body.id]);
    const conflict = await app(
      'POST',
      '/v1/messages',
      { from: 'app@acme.test', to: ['two@example.net'], subject: 's', text: 't' },
      headers,
    );
    expect(conflict.status).toBe(409);
    expect(conflict.body.error.message).toMatch(/Idempotency-Key "invoice-42" was already used for message/);
    expect(await env.relay.storage.events.query({ recipient: 'two@example.net', limit: 10 })).toEqual([]);
  });

  it('bounces, without suppressing the recipient, when the MX refuses our envelope sender', async () => {
    const sent = await app('POST', '/v1/messages/raw', {
      envelope: { from: 'odd.sender@acme.test', to: ['keep@example.net'] },
      raw: 'From: app@acme.test\r\nTo: keep@example.net\r\nSubject: s\r\n\r\nbody\r\n',
    });
    expect(sent.status).toBe(202);
    const bounced = await waitFor(
      async () => (await env.relay.storage.events.query({ recipient: 'keep@example.net', status: 'bounced', limit: 1 }))[0],
      'the bounce',
    );
    expect(bounced.smtpCode).toBe(553);
    expect(await env.relay.storage.suppressions.isSuppressed('keep@example.net', 'app')).toBe(false);
    expect(await env.relay.storage.suppressions.list()).toEqual([]);
  });
});
