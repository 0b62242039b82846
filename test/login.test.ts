/**
 * Password checks seen from SMTP clients: scrypt runs off the event loop, so other sessions are
 * served while a login is being checked; and a failed login takes as long for an unknown
 * username as for a real one with a wrong password, so timing does not tell which exist.
 */
import { randomBytes, scryptSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addCredential, addSenderDomain, startTestRelay, type TestRelay } from './helpers/relay.js';
import { RawSmtpClient } from './helpers/smtp-client.js';

let relay: TestRelay;
let known: { username: string; password: string };

beforeAll(async () => {
  relay = await startTestRelay({
    limits: { auth_failures_per_connection: 1000, auth_failures_per_ip: 1000, auth_failures_per_user: 1000 },
  });
  await addSenderDomain(relay.storage, 'acme.test');
  known = await addCredential(relay.storage, 'known-app', ['acme.test']);
});

afterAll(async () => {
  await relay?.stop();
});

async function greeted(): Promise<RawSmtpClient> {
  const { client } = await RawSmtpClient.connect(relay.ports.smtps!, { implicitTls: true });
  await client.command('EHLO client.test');
  return client;
}

const plain = (user: string, password: string) => `AUTH PLAIN ${Buffer.from(`\0${user}\0${password}`).toString('base64')}`;

describe('password checks', () => {
  it('do not block the event loop: another session is served while a failed login is being checked', async () => {
    // A costlier hash than the default (p=16: sixteen times the work) makes the check long
    // enough that "served meanwhile" cannot happen by luck.
    const salt = randomBytes(16);
    const hash = scryptSync('the-real-password', salt, 32, { N: 16384, r: 8, p: 16 });
    await relay.storage.credentials.add({
      name: 'slow-app',
      username: 'slow-app',
      passwordHash: ['scrypt', 16384, 8, 16, salt.toString('base64'), hash.toString('base64')].join('$'),
      domains: ['acme.test'],
    });
    const loggingIn = await greeted();
    const other = await greeted();

    // Told when the relay starts on this login (the store is read just before the password is checked).
    const credentials = relay.storage.credentials;
    const lookup = credentials.byUsername;
    let started!: () => void;
    const checking = new Promise<void>((resolve) => (started = resolve));
    credentials.byUsername = function (this: typeof credentials, username: string) {
      if (username === 'slow-app') started();
      return lookup.call(this, username);
    };

    const order: string[] = [];
    try {
      const failedLogin = loggingIn.command(plain('slow-app', 'wrong-password')).then((reply) => order.push(`auth ${reply.code}`));
      await checking;
      const noop = other.command('NOOP').then((reply) => order.push(`noop ${reply.code}`));
      await Promise.all([failedLogin, noop]);
    } finally {
      credentials.byUsername = lookup;
    }
    expect(order).toEqual(['noop 250', 'auth 535']);
    loggingIn.close();
    other.close();
  });

  it('take as long for an unknown username as for a known one with a wrong password', async () => {
    const client = await greeted();
    const timed = async (user: string) => {
      const started = process.hrtime.bigint();
      const reply = await client.command(plain(user, 'not-the-password'));
      expect(reply.code).toBe(535);
      return Number(process.hrtime.bigint() - started);
    };
    const knownTimes: number[] = [];
    const unknownTimes: number[] = [];
    for (let round = 0; round < 9; round++) {
      knownTimes.push(await timed(known.username));
      unknownTimes.push(await timed(`nobody-${round}`));
    }
    client.close();
    const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
    // The same work either way; the generous ratio leaves room for a busy machine.
    expect(median(unknownTimes)).toBeGreaterThanOrEqual(median(knownTimes) * 0.5);
  });
});
