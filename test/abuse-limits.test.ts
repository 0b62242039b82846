/**
 * AUTH brute force and connection limits, against the real listeners: per-connection, per-IP
 * and per-username AUTH failure limits with a cooling-off period; max clients overall and per
 * IP; the idle and command timeouts (a slow client cannot hold a slot); over-long lines; too
 * many commands without AUTH. Other client IPs come from other 127.0.0.x source addresses.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawSmtpClient } from './helpers/smtp-client.js';
import { addCredential, addSenderDomain, startTestRelay, type TestRelay } from './helpers/relay.js';
import { testClock } from './helpers/clock.js';
import { waitFor } from './helpers/wait.js';

let relay: TestRelay;
let creds: { username: string; password: string };
let other: { username: string; password: string };

const LOCKOUT_MS = 10 * 60_000;
/** Lockouts are counted in it, so the test ends one by advancing it rather than waiting. */
const clock = testClock();

beforeAll(async () => {
  relay = await startTestRelay(
    {
      limits: {
        auth_failures_per_connection: 3,
        auth_failures_per_ip: 4,
        auth_failures_per_user: 4,
        auth_failures_per_user_total: 4,
        auth_failure_window: '1m',
        auth_lockout: `${LOCKOUT_MS}ms`,
        max_clients: 5,
        max_clients_per_ip: 2,
        idle_timeout: '2s',
        command_timeout: '1200ms',
        max_line_length: 1000,
        max_unauthenticated_commands: 5,
      },
    },
    { clock: clock.now },
  );
  await addSenderDomain(relay.storage, 'acme.test');
  creds = await addCredential(relay.storage, 'billing-app', ['acme.test']);
  other = await addCredential(relay.storage, 'other-app', ['acme.test']);
});

afterAll(async () => {
  await relay?.stop();
});

/** A new session over implicit TLS; retried while connections closed by the previous test still count (they are released when the relay sees them close). */
async function session(localAddress: string) {
  return waitFor(
    () => RawSmtpClient.connect(relay.ports.smtps!, { implicitTls: true, localAddress }).catch(() => undefined),
    `a connection from ${localAddress}`,
  );
}

async function greeted(localAddress: string) {
  const { client, greeting } = await session(localAddress);
  expect(greeting.code).toBe(220);
  await client.command('EHLO client.test');
  return client;
}

async function login(localAddress: string, user: string, password: string) {
  const client = await greeted(localAddress);
  const reply = await client.authPlain(user, password);
  client.close();
  return `${reply.code} ${reply.text.split(' ')[0]}`;
}

describe('AUTH brute force', () => {
  it('closes the connection with 421 4.7.0 after a few failures in it; a right password before that is accepted', async () => {
    const client = await greeted('127.0.0.2');
    expect((await client.authPlain(creds.username, 'wrong-1')).code).toBe(535);
    expect((await client.authPlain(creds.username, creds.password)).code).toBe(235);
    client.close();

    const attacker = await greeted('127.0.0.3');
    expect((await attacker.authPlain('nobody', 'a')).code).toBe(535);
    expect((await attacker.authPlain('nobody', 'b')).code).toBe(535);
    const third = await attacker.authPlain('nobody', 'c');
    expect(`${third.code} ${third.text}`).toMatch(/^421 4\.7\.0 /);
    await waitFor(() => attacker.closed, 'the server to close the connection');
  });

  it('cools off a username after repeated failures from many IPs: 454 4.7.0 even with the right password', async () => {
    for (let i = 10; i < 14; i++) expect(await login(`127.0.0.${i}`, other.username, 'guess')).toBe('535 5.7.8');
    expect(await login('127.0.0.14', other.username, other.password)).toBe('454 4.7.0');
    expect(await login('127.0.0.14', creds.username, creds.password)).toBe('235 2.7.0');
    clock.advance(LOCKOUT_MS + 1);
    expect(await login('127.0.0.15', other.username, other.password)).toBe('235 2.7.0');
  });

  it('cools off an IP after repeated failures against many usernames: 454 4.7.0 even with the right password', async () => {
    for (let i = 0; i < 4; i++) expect(await login('127.0.0.20', `user-${i}`, 'guess')).toBe('535 5.7.8');
    expect(await login('127.0.0.20', creds.username, creds.password)).toBe('454 4.7.0');
    expect(await login('127.0.0.21', creds.username, creds.password)).toBe('235 2.7.0');
  });
});

describe('connection limits', () => {
  it('refuses past max_clients_per_ip and max_clients with 421 4.7.0 at connect, and admits again once one leaves', async () => {
    // On 587 the refusal can be said in clear; both listeners count against the same limits.
    const plain = (localAddress: string) => RawSmtpClient.connect(relay.ports.submission!, { localAddress });
    const held = [(await session('127.0.0.30')).client, (await plain('127.0.0.30')).client];
    const third = await plain('127.0.0.30');
    expect(`${third.greeting.code} ${third.greeting.text}`).toMatch(/^421 4\.7\.0 too many connections from 127\.0\.0\.30/);
    held.push((await session('127.0.0.31')).client, (await plain('127.0.0.31')).client, (await session('127.0.0.32')).client);
    const sixth = await plain('127.0.0.33');
    expect(`${sixth.greeting.code} ${sixth.greeting.text}`).toMatch(/^421 4\.7\.0 too many connections/);
    held.shift()!.close();
    await waitFor(async () => {
      const { client, greeting } = await plain('127.0.0.30');
      client.close();
      return greeting.code === 220;
    }, 'a slot to free up');
    for (const client of held) client.close();
  });

  it('closes an idle session (421 4.4.2) and one that trickles bytes without finishing a command', async () => {
    const idle = await greeted('127.0.0.40');
    const timeout = await idle.read();
    expect(`${timeout.code} ${timeout.text}`).toMatch(/^421 4\.4\.2 /);

    // A deadline that each byte restarted would never fire: the read would hang until the test times out.
    const slow = await greeted('127.0.0.41');
    const trickle = setInterval(() => slow.write('N'), 200);
    const reply = await slow.read();
    clearInterval(trickle);
    expect(`${reply.code} ${reply.text}`).toMatch(/^421 4\.4\.2 command timeout/);
    await waitFor(() => slow.closed, 'the slow session to be closed');
  });

  it('closes the session on an over-long command line and after too many commands without AUTH', async () => {
    const long = await greeted('127.0.0.50');
    const reply = await long.command(`NOOP ${'x'.repeat(1200)}`);
    expect(`${reply.code} ${reply.text}`).toMatch(/^421 .*line too long/i);
    await waitFor(() => long.closed, 'the session to be closed');

    const chatty = await greeted('127.0.0.51');
    const replies: string[] = [];
    while (!replies.some((r) => r.startsWith('421')) && replies.length < 5) {
      const reply = await chatty.command('NOOP');
      replies.push(`${reply.code} ${reply.text}`);
    }
    // EHLO and three NOOPs are allowed with max_unauthenticated_commands: 5.
    expect(replies).toEqual([
      '250 2.0.0 OK',
      '250 2.0.0 OK',
      '250 2.0.0 OK',
      expect.stringMatching(/^421 .*too many unauthenticated commands/),
    ]);
    await waitFor(() => chatty.closed, 'the session to be closed');
  });
});

/**
 * Connections to the implicit-TLS listener that never start the handshake: they count against
 * the limits from accept, and are closed after tls_handshake_timeout, well before the idle
 * timeout (5m here, so only the handshake timeout can end them within the test).
 */
describe('TLS handshake flood on the implicit-TLS listener', () => {
  let flooded: TestRelay;

  beforeAll(async () => {
    flooded = await startTestRelay({
      limits: { max_clients: 4, max_clients_per_ip: 2, tls_handshake_timeout: '3s', idle_timeout: '5m', command_timeout: '5m' },
    });
  });

  afterAll(async () => {
    await flooded?.stop();
  });

  /** A TCP connection that never sends a byte; `closed` settles when the relay closes it. */
  async function silent(localAddress: string) {
    const socket = net.connect({ port: flooded.ports.smtps!, host: '127.0.0.1', localAddress });
    socket.on('error', () => {});
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    let isClosed = false;
    void closed.then(() => (isClosed = true));
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    return { socket, closed, isClosed: () => isClosed };
  }

  /** A real client: TLS handshake and the greeting, or the error if the connection is cut. */
  async function tlsGreeting(localAddress: string): Promise<string> {
    try {
      const { client, greeting } = await RawSmtpClient.connect(flooded.ports.smtps!, { implicitTls: true, localAddress });
      client.close();
      return `${greeting.code}`;
    } catch (err) {
      return `error ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`;
    }
  }

  it('counts them per IP from accept: the next one from that IP is closed at once; all are dropped after the handshake timeout', async () => {
    const held = [await silent('127.0.0.60'), await silent('127.0.0.60')];
    const extra = await silent('127.0.0.60');
    await extra.closed;
    // Closed for the limit, not for a timeout: the ones it is over are still open.
    expect(held.map((h) => h.isClosed())).toEqual([false, false]);
    expect(await tlsGreeting('127.0.0.60')).toMatch(/^error /);
    await Promise.all(held.map((h) => h.closed));
    expect(await tlsGreeting('127.0.0.60')).toBe('220');
  });

  it('counts them in the total from accept: a real client from another IP is refused until they are dropped', async () => {
    const held = [await silent('127.0.0.61'), await silent('127.0.0.61'), await silent('127.0.0.62'), await silent('127.0.0.62')];
    expect(await tlsGreeting('127.0.0.63')).toMatch(/^error /);
    expect(held.map((h) => h.isClosed())).toEqual([false, false, false, false]);
    await Promise.all(held.map((h) => h.closed));
    expect(await tlsGreeting('127.0.0.63')).toBe('220');
  });
});
