/**
 * What nodes sharing one PostgreSQL database must agree on: quotas (exactly N across nodes),
 * rate limits (one bucket for all), the suppression list, revocation, login failures,
 * idempotency keys, webhook events (each posted once) and sender domains. Two relays run in
 * this process, each with its own listeners and node name, on one fresh database.
 */
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashApiKey, newApiKey } from '../src/submission/api-keys.js';
import { createTestDatabase, type TestDatabase } from './helpers/postgres.js';
import { apiClient } from './helpers/http.js';
import { addCredential, addSenderDomain, startTestRelay, type TestRelay } from './helpers/relay.js';
import { RawSmtpClient } from './helpers/smtp-client.js';
import { startWebhookReceiver, type WebhookReceiver } from './helpers/webhook-receiver.js';
import { waitFor } from './helpers/wait.js';

let db: TestDatabase;
let a: TestRelay;
let b: TestRelay;
let receiver: WebhookReceiver;
const creds: Record<string, { username: string; password: string }> = {};
const apiKey = newApiKey();

beforeAll(async () => {
  db = await createTestDatabase();
  receiver = await startWebhookReceiver();
  const shared = {
    database: db.url,
    database_pool: 4,
    webhooks: { poll_interval: '50ms', retry_schedule: ['100ms'] },
    // Every test logs in from 127.0.0.1: only the per-user lockout is under test here.
    limits: { auth_failures_per_ip: 1000 },
  };
  a = await startTestRelay({ ...shared, node_name: 'node-a' });
  b = await startTestRelay({ ...shared, node_name: 'node-b' });
  await addSenderDomain(a.storage, 'acme.test');
  for (const name of ['quota-app', 'rate-app', 'idem-app', 'revoked-app', 'locked-app', 'plain-app']) {
    creds[name] = await addCredential(a.storage, name, ['acme.test']);
  }
  await a.storage.credentials.addApiKey('idem-app', hashApiKey(apiKey));
  await a.storage.webhooks.add(receiver.url, 'whsec-cluster', ['suppressed']);
});

afterAll(async () => {
  await a?.stop();
  await b?.stop();
  await receiver?.stop();
  await db?.drop();
});

async function session(relay: TestRelay, name: string) {
  const { client } = await RawSmtpClient.connect(relay.ports.smtps!, { implicitTls: true });
  await client.command('EHLO app.test');
  const auth = await client.authPlain(creds[name]!.username, creds[name]!.password);
  return { client, auth };
}

/** One message with one recipient; resolves to the final reply ("250 ..." or the refusal). */
async function send(relay: TestRelay, name: string, to: string): Promise<string> {
  const { client } = await session(relay, name);
  try {
    for (const command of ['MAIL FROM:<app@acme.test>', `RCPT TO:<${to}>`]) {
      const r = await client.command(command);
      if (r.code >= 400) return `${r.code} ${r.text}`;
    }
    const r = await client.data(`From: app@acme.test\r\nTo: ${to}\r\nSubject: t\r\n\r\nhello`);
    return `${r.code} ${r.text}`;
  } finally {
    client.close();
  }
}

describe('nodes sharing one PostgreSQL database', () => {
  it('accepts exactly the daily quota across both nodes when they are sent to at once', async () => {
    await a.storage.limits.set('quota-app', { daily: 7 });
    const replies = await Promise.all(Array.from({ length: 24 }, (_, i) => send(i % 2 ? a : b, 'quota-app', `q${i}@example.net`)));
    const accepted = replies.filter((r) => r.startsWith('250'));
    expect(accepted).toHaveLength(7);
    for (const r of replies.filter((r) => !r.startsWith('250')))
      expect(r).toMatch(/^451 4\.7\.1 credential quota-app is over its daily quota of 7/);
    expect((await b.storage.limits.usage('quota-app', Date.now())).day).toBe(7);
  });

  it('draws both nodes from one rate bucket', async () => {
    await a.storage.limits.set('rate-app', { rate: { count: 10, perSeconds: 3600 } });
    const replies: string[] = [];
    for (let i = 0; i < 30; i++) replies.push(await send(i % 2 ? a : b, 'rate-app', `r${i}@example.net`));
    // One full bucket of 10 (it refills at 10 an hour), not 10 per node.
    expect(replies.filter((r) => r.startsWith('250'))).toHaveLength(10);
    expect(replies.find((r) => !r.startsWith('250'))).toMatch(/^451 4\.7\.1 credential rate-app is over its rate/);
  });

  it('refuses on one node an address suppressed through the other, and posts its webhook event once', async () => {
    await a.storage.suppressions.add({ address: 'blocked@example.net', reason: 'manual', credential: null });
    const { client } = await session(b, 'plain-app');
    try {
      expect((await client.command('MAIL FROM:<app@acme.test>')).code).toBe(250);
      const refused = await client.command('RCPT TO:<blocked@example.net>');
      expect(`${refused.code} ${refused.text}`).toMatch(/^550 5\.1\.1 recipient <blocked@example\.net> is on the suppression list/);
    } finally {
      client.close();
    }
    await waitFor(
      () => receiver.received.some((h) => JSON.parse(h.body).recipient === 'blocked@example.net'),
      'the suppressed event at the webhook',
    );
    // Both dispatchers poll every 50 ms; give them a few rounds to post a second copy if they would.
    await waitFor(async () => (await a.storage.webhooks.backlog()).count === 0, 'an empty outbox');
    const ids = receiver.received.map((h) => (JSON.parse(h.body) as { id: number }).id);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('stops a session on one node within 2 s of a revoke through the other', async () => {
    const { client, auth } = await session(b, 'revoked-app');
    try {
      expect(auth.code).toBe(235);
      expect((await client.command('MAIL FROM:<app@acme.test>')).code).toBe(250);
      await client.command('RSET');
      await a.storage.credentials.revoke('revoked-app');
      const refused = await waitFor(
        async () => {
          const r = await client.command('MAIL FROM:<app@acme.test>');
          if (r.code === 250) await client.command('RSET');
          return r.code === 250 ? undefined : r;
        },
        'MAIL FROM refused after the revoke',
        5000,
      );
      expect(`${refused.code} ${refused.text}`).toMatch(/^550 5\.7\.8 credential revoked-app has been revoked/);
    } finally {
      client.close();
    }
  });

  it('counts failed logins on every node against the same IP and user', async () => {
    const limit = a.config.limits.auth_failures_per_user;
    for (let i = 0; i < limit; i++) {
      const { client } = await RawSmtpClient.connect((i % 2 ? a : b).ports.smtps!, { implicitTls: true });
      await client.command('EHLO app.test');
      expect((await client.authPlain('locked-app', 'wrong')).code).toBe(535);
      client.close();
    }
    const { auth } = await session(a, 'locked-app');
    expect(`${auth.code} ${auth.text}`).toMatch(/^454 4\.7\.0/);
  });

  it('queues one message when the same Idempotency-Key reaches both nodes at once', async () => {
    const body = { from: 'app@acme.test', to: ['idem@example.net'], subject: 'once', text: 'only once' };
    const headers = { 'idempotency-key': 'order-77' };
    const [ra, rb] = await Promise.all([
      apiClient(a.ports.http!, apiKey)('POST', '/v1/messages', body, headers),
      apiClient(b.ports.http!, apiKey)('POST', '/v1/messages', body, headers),
    ]);
    expect([ra.status, rb.status]).toEqual([202, 202]);
    expect(ra.body.id).toBe(rb.body.id);
    const queued = (await a.storage.events.query({ recipient: 'idem@example.net', status: 'queued', limit: 10 })).length;
    expect(queued).toBe(1);
  });

  it('uses on every node, within 2 s, a sender domain verified through one', async () => {
    await addSenderDomain(a.storage, 'late.test', { verified: false });
    await a.storage.credentials.add({
      name: 'late-app',
      username: 'late-app',
      passwordHash: (await a.storage.credentials.get('plain-app'))!.passwordHash,
      domains: ['late.test'],
    });
    const client = nodemailer.createTransport({
      host: '127.0.0.1',
      port: b.ports.smtps!,
      secure: true,
      auth: { user: 'late-app', pass: creds['plain-app']!.password },
      tls: { rejectUnauthorized: false },
    });
    try {
      await expect(client.sendMail({ from: 'news@late.test', to: 'x@example.net', text: 'x' })).rejects.toThrow(
        /5\.7\.1 sender domain late\.test is not verified/,
      );
      await a.storage.domains.setVerification('late.test', true, {});
      await waitFor(
        () =>
          client.sendMail({ from: 'news@late.test', to: 'x@example.net', text: 'x' }).then(
            () => true,
            () => false,
          ),
        'the verified domain accepted on the other node',
      );
    } finally {
      client.close();
    }
  });
});
