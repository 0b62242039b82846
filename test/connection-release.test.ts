/**
 * Connection slots come back when connections end, however they end: after STARTTLS (the TLS
 * socket takes over the accepted socket, which never reports its own close), after an implicit
 * TLS session, and after a failed handshake. Otherwise a client that sends one message per
 * connection would be locked out after max_clients_per_ip of them.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addCredential, addSenderDomain, startTestRelay, type TestRelay } from './helpers/relay.js';
import { RawSmtpClient } from './helpers/smtp-client.js';
import { waitFor } from './helpers/wait.js';

const PER_IP = 4;
let relay: TestRelay;
let creds: { username: string; password: string };

beforeAll(async () => {
  relay = await startTestRelay({ limits: { max_clients_per_ip: PER_IP } });
  await addSenderDomain(relay.storage, 'acme.test');
  creds = await addCredential(relay.storage, 'app', ['acme.test']);
});

afterAll(async () => {
  await relay?.stop();
});

/** One whole session; resolves to its AUTH reply code once the connection has closed. */
async function session(implicitTls: boolean): Promise<number> {
  const port = implicitTls ? relay.ports.smtps! : relay.ports.submission!;
  const { client } = await RawSmtpClient.connect(port, { implicitTls });
  await client.command('EHLO app.test');
  if (!implicitTls) await client.starttls();
  await client.command('EHLO app.test');
  const auth = await client.authPlain(creds.username, creds.password);
  await client.command('QUIT').catch(() => undefined);
  client.close();
  await waitFor(() => (client.closed ? true : undefined), 'the connection to close');
  return auth.code;
}

describe('connection slots', () => {
  it(`are given back after STARTTLS sessions: ${PER_IP * 3} one after another from one IP`, async () => {
    for (let i = 0; i < PER_IP * 3; i++) {
      // The relay sees the close a moment after the client: retry the connect until a slot is free.
      expect(await waitFor(() => session(false).catch(() => undefined), `STARTTLS session ${i}`)).toBe(235);
    }
  });

  it(`are given back after implicit-TLS sessions and failed handshakes`, async () => {
    for (let i = 0; i < PER_IP * 2; i++) {
      const garbage = net.connect(relay.ports.smtps!, '127.0.0.1');
      garbage.on('error', () => {});
      await new Promise<void>((resolve) => garbage.once('connect', () => resolve()));
      garbage.write('this is not a TLS ClientHello\r\n');
      await new Promise<void>((resolve) => garbage.once('close', () => resolve()));
      expect(await waitFor(() => session(true).catch(() => undefined), `implicit-TLS session ${i}`)).toBe(235);
    }
  });
});
