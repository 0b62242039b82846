/**
 * The submission rules, seen from a client app: real TLS listeners on loopback, real clients
 * (nodemailer, and a raw client for exact bytes and replies), the real SQLite queue.
 */
import { createRequire } from 'node:module';
import net, { type AddressInfo } from 'node:net';
import Database from 'better-sqlite3';
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { retainedBytes } from './helpers/memory.js';
import { RawSmtpClient } from './helpers/smtp-client.js';
import { eventsOf } from './helpers/events.js';
import { addCredential, addSenderDomain, startTestRelay, storedBody, type TestRelay } from './helpers/relay.js';

const require = createRequire(import.meta.url);
const { dkimVerify } = require('mailauth/lib/dkim/verify') as {
  dkimVerify: (
    msg: Buffer,
    opts: { resolver: (name: string, type: string) => Promise<string[][]> },
  ) => Promise<{ results: { status: { result: string }; signingDomain: string }[] }>;
};

let relay: TestRelay;
let creds: { username: string; password: string };
let dkimRecords: Map<string, string>;

const MAX_BYTES = 200_000;

beforeAll(async () => {
  relay = await startTestRelay({ limits: { max_message_bytes: MAX_BYTES, max_recipients: 5 } });
  dkimRecords = new Map();
  for (const [name, options] of [
    ['acme.test', {}],
    ['edge.test', { algorithm: 'ed25519' as const }],
    ['unverified.test', { verified: false }],
    ['other.test', {}],
  ] as const) {
    for (const record of await addSenderDomain(relay.storage, name, options)) {
      if (record.purpose === 'dkim') dkimRecords.set(record.name, record.value);
    }
  }
  creds = await addCredential(relay.storage, 'billing-app', ['acme.test', 'edge.test', 'unverified.test']);
  await relay.storage.suppressions.add({ address: 'gone@example.net', reason: 'test', credential: null });
});

afterAll(async () => {
  await relay?.stop();
});

function transport(listener: 'smtps' | 'submission', auth = creds) {
  return nodemailer.createTransport({
    host: '127.0.0.1',
    port: relay.ports[listener],
    secure: listener === 'smtps',
    requireTLS: listener === 'submission',
    auth: { user: auth.username, pass: auth.password },
    tls: { rejectUnauthorized: false },
  });
}

const queueIdOf = (response: string) => /queued as (\S+)/.exec(response)?.[1];

async function verifyDkim(message: Buffer) {
  const { results } = await dkimVerify(message, {
    resolver: async (name, type) => {
      const value = dkimRecords.get(name);
      if (type !== 'TXT' || !value) throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' });
      return [[value]];
    },
  });
  return results;
}

async function rawSession(listener: 'smtps' | 'submission', login = true) {
  const { client } = await RawSmtpClient.connect(relay.ports[listener]!, { implicitTls: listener === 'smtps' });
  await client.command('EHLO client.test');
  if (listener === 'submission') {
    await client.starttls();
    await client.command('EHLO client.test');
  }
  if (login) expect((await client.authPlain(creds.username, creds.password)).code).toBe(235);
  return client;
}

/**
 * A loopback TCP proxy in front of `port` that counts the TLS records the server sends (each
 * starts with a 5-byte header whose last two bytes are its length).
 */
async function tlsRecordCounter(port: number): Promise<{ port: number; records(): number; close(): void }> {
  let records = 0;
  const sockets: net.Socket[] = [];
  const proxy = net.createServer((client) => {
    const server = net.connect(port, '127.0.0.1');
    sockets.push(client, server);
    client.pipe(server);
    let pending = Buffer.alloc(0);
    server.on('data', (chunk: Buffer) => {
      client.write(chunk);
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 5 && pending.length >= 5 + pending.readUInt16BE(3)) {
        pending = pending.subarray(5 + pending.readUInt16BE(3));
        records++;
      }
    });
    for (const socket of [client, server]) socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', () => resolve()));
  return {
    port: (proxy.address() as AddressInfo).port,
    records: () => records,
    close: () => {
      for (const socket of sockets) socket.destroy();
      proxy.close();
    },
  };
}

describe('submission', () => {
  it('accepts over 465 with AUTH PLAIN, answers with the queue id and stores a DKIM-signed message', async () => {
    const info = await transport('smtps').sendMail({
      from: 'Billing <billing@acme.test>',
      to: ['a@example.net', 'b@example.org'],
      subject: 'Invoice',
      text: 'Your invoice, with 8-bit text: naïve café\n',
    });
    expect(info.response).toMatch(/^250 2\.0\.0 Ok: queued as \S+/);
    const queueId = queueIdOf(info.response)!;
    const entry = (await relay.storage.queue.message(queueId))!;
    expect(entry.recipients.map((r) => r.address).sort()).toEqual(['a@example.net', 'b@example.org']);
    expect(entry.mailFrom).toBe('billing@acme.test');
    const body = (await storedBody(relay.storage.queue, queueId))!;
    const text = body.toString();
    expect(text.startsWith('DKIM-Signature:')).toBe(true);
    expect(text).toMatch(/\r\nReceived: from client.test|\r\nReceived: from /);
    expect(text).toContain(`id ${queueId}`);
    const results = await verifyDkim(body);
    expect(results[0]!.status.result).toBe('pass');
    expect(results[0]!.signingDomain).toBe('acme.test');
  });

  it('accepts over 587 after STARTTLS with AUTH LOGIN and signs with ed25519 keys too', async () => {
    const t = nodemailer.createTransport({
      host: '127.0.0.1',
      port: relay.ports.submission,
      secure: false,
      requireTLS: true,
      auth: { user: creds.username, pass: creds.password, method: 'LOGIN' },
      tls: { rejectUnauthorized: false },
    });
    const info = await t.sendMail({ from: 'ops@edge.test', to: 'x@example.net', subject: 'hi', text: 'hello' });
    const body = (await storedBody(relay.storage.queue, queueIdOf(info.response)!))!;
    const results = await verifyDkim(body);
    expect(results[0]!.status.result).toBe('pass');
    expect(body.toString()).toMatch(/a=ed25519-sha256/);
  });

  it('adds Message-ID and Date when missing and keeps them when present', async () => {
    const client = await rawSession('smtps');
    await client.command('MAIL FROM:<billing@acme.test>');
    await client.command('RCPT TO:<r@example.net>');
    let reply = await client.data('From: billing@acme.test\r\nSubject: bare\r\n\r\nbody');
    expect(reply.code).toBe(250);
    let text = (await storedBody(relay.storage.queue, queueIdOf(reply.text)!))!.toString();
    expect(text).toMatch(/\r\nMessage-ID: <[^>]+@relay\.test>\r\n/);
    expect(text).toMatch(/\r\nDate: \w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} \+0000\r\n/);

    await client.command('MAIL FROM:<billing@acme.test>');
    await client.command('RCPT TO:<r@example.net>');
    reply = await client.data(
      'From: billing@acme.test\r\nMessage-ID: <mine@acme.test>\r\nDate: Mon, 2 Nov 2026 10:00:00 +0000\r\n\r\nbody',
    );
    text = (await storedBody(relay.storage.queue, queueIdOf(reply.text)!))!.toString();
    expect(text.match(/^Message-ID:/gim)).toHaveLength(1);
    expect(text).toContain('Message-ID: <mine@acme.test>');
    expect(text.match(/^Date:/gim)).toHaveLength(1);
    client.close();
  });

  it('normalises bare LF and bare CR to CRLF before signing', async () => {
    const client = await rawSession('smtps');
    await client.command('MAIL FROM:<billing@acme.test>');
    await client.command('RCPT TO:<r@example.net>');
    const reply = await client.data('From: billing@acme.test\nSubject: lf\n\nline one\nline two\rline three\r\nend');
    expect(reply.code).toBe(250);
    const body = (await storedBody(relay.storage.queue, queueIdOf(reply.text)!))!;
    expect(/[^\r]\n|\r[^\n]/.test(body.toString('latin1'))).toBe(false);
    expect(body.toString()).toContain('line one\r\nline two\r\nline three\r\nend');
    expect((await verifyDkim(body))[0]!.status.result).toBe('pass');
    client.close();
  });

  it('advertises the extensions, STARTTLS before TLS and AUTH only after it on 587', async () => {
    const { client } = await RawSmtpClient.connect(relay.ports.submission!);
    const before = (await client.command('EHLO client.test')).lines.join('\n');
    for (const ext of ['STARTTLS', 'PIPELINING', '8BITMIME', 'SMTPUTF8', 'ENHANCEDSTATUSCODES', `SIZE ${MAX_BYTES}`]) {
      expect(before).toContain(ext);
    }
    // No mechanism is offered before TLS, so a client does not send its password in clear.
    expect(before).not.toMatch(/AUTH/);
    expect((await client.command('AUTH PLAIN AGJpbGxpbmctYXBwAHg=')).text).toMatch(/^5\.7\.0 /);
    const mail = await client.command('MAIL FROM:<billing@acme.test>');
    expect(mail.code).toBe(530);
    expect(mail.text).toMatch(/^5\.7\.0 /);
    await client.starttls();
    const after = (await client.command('EHLO client.test')).lines.join('\n');
    expect(after).toMatch(/AUTH PLAIN LOGIN/);
    expect(after).not.toContain('STARTTLS');
    client.close();
  });

  it('refuses AUTH before STARTTLS with 530 5.7.0', async () => {
    const { client } = await RawSmtpClient.connect(relay.ports.submission!);
    await client.command('EHLO client.test');
    const reply = await client.authPlain(creds.username, creds.password);
    expect(reply.code).toBe(530);
    expect(reply.text).toMatch(/^5\.7\.0 /);
    client.close();
  });

  it('refuses MAIL without AUTH with 530 5.7.0', async () => {
    const client = await rawSession('smtps', false);
    const reply = await client.command('MAIL FROM:<billing@acme.test>');
    expect(reply.code).toBe(530);
    expect(reply.text).toMatch(/^5\.7\.0 /);
    client.close();
  });

  it('answers 535 5.7.8, the same way, for a wrong password and for an unknown user', async () => {
    const replies = [];
    for (const [user, pass] of [
      [creds.username, 'wrong'],
      ['nobody', 'wrong'],
    ]) {
      const client = await rawSession('smtps', false);
      replies.push(await client.authPlain(user!, pass!));
      client.close();
    }
    expect(replies[0]!.code).toBe(535);
    expect(replies[0]!.text).toMatch(/^5\.7\.8 /);
    expect(replies[1]!.text).toBe(replies[0]!.text);
  });

  it('refuses an envelope sender outside the credential domains or unverified, naming the domain', async () => {
    const client = await rawSession('smtps');
    let reply = await client.command('MAIL FROM:<x@other.test>');
    expect(reply.code).toBe(550);
    expect(reply.text).toMatch(/^5\.7\.1 sender domain other\.test is not verified for credential billing-app/);
    reply = await client.command('MAIL FROM:<x@unverified.test>');
    expect(reply.code).toBe(550);
    expect(reply.text).toMatch(/^5\.7\.1 sender domain unverified\.test /);
    reply = await client.command('MAIL FROM:<>');
    expect(reply.code).toBe(550);
    expect(reply.text).toMatch(/^5\.7\.1 /);
    client.close();
  });

  it('refuses a header From or Sender outside the allowed domains', async () => {
    const client = await rawSession('smtps');
    await client.command('MAIL FROM:<billing@acme.test>');
    await client.command('RCPT TO:<r@example.net>');
    let reply = await client.data('From: boss@other.test\r\nSubject: spoof\r\n\r\nbody');
    expect(reply.code).toBe(550);
    expect(reply.text).toMatch(/^5\.7\.1 sender domain other\.test /);
    await client.command('MAIL FROM:<billing@acme.test>');
    await client.command('RCPT TO:<r@example.net>');
    reply = await client.data('From: billing@acme.test\r\nSender: x@other.test\r\n\r\nbody');
    expect(reply.code).toBe(550);
    expect(reply.text).toMatch(/^5\.7\.1 sender domain other\.test /);
    client.close();
  });

  it('refuses a suppressed recipient with 550 5.1.1 and records the event; the others still go', async () => {
    const client = await rawSession('smtps');
    await client.command('MAIL FROM:<billing@acme.test>');
    const refused = await client.command('RCPT TO:<Gone@example.net>');
    expect(refused.code).toBe(550);
    expect(refused.text).toMatch(/^5\.1\.1 /);
    expect((await client.command('RCPT TO:<kept@example.net>')).code).toBe(250);
    const reply = await client.data('From: billing@acme.test\r\n\r\nbody');
    expect(reply.code).toBe(250);
    const entry = (await relay.storage.queue.message(queueIdOf(reply.text)!))!;
    expect(entry.recipients.map((r) => r.address)).toEqual(['kept@example.net']);
    const events = await eventsOf(relay.storage, { recipient: 'gone@example.net', status: 'suppressed' });
    expect(events.length).toBeGreaterThan(0);
    expect(events[0]!.smtpCode).toBe(550);
    expect(events[0]!.credential).toBe('billing-app');
    client.close();
  });

  it('refuses more than max_recipients with 452 4.5.3', async () => {
    const client = await rawSession('smtps');
    await client.command('MAIL FROM:<billing@acme.test>');
    for (let i = 0; i < 5; i++) expect((await client.command(`RCPT TO:<r${i}@example.net>`)).code).toBe(250);
    const reply = await client.command('RCPT TO:<r5@example.net>');
    expect(reply.code).toBe(452);
    expect(reply.text).toMatch(/^4\.5\.3 /);
    client.close();
  });

  it('refuses an oversized message with 552 5.3.4 and queues nothing', async () => {
    const before = (await relay.storage.queue.pending()).length;
    const client = await rawSession('smtps');
    await client.command('MAIL FROM:<billing@acme.test>');
    await client.command('RCPT TO:<r@example.net>');
    const reply = await client.data('From: billing@acme.test\r\n\r\n' + 'x'.repeat(76).concat('\r\n').repeat(3000));
    expect(reply.code).toBe(552);
    expect(reply.text).toMatch(/^5\.3\.4 /);
    expect((await relay.storage.queue.pending()).length).toBe(before);
    client.close();
  });

  it('does not keep DATA past the limit: 60 MB against a 200 KB limit is 552 5.3.4 without growing memory, and the session goes on', async () => {
    const client = await rawSession('smtps');
    await client.command('MAIL FROM:<billing@acme.test>');
    await client.command('RCPT TO:<r@example.net>');
    expect((await client.command('DATA')).code).toBe(354);
    const line = Buffer.from('x'.repeat(998) + '\r\n');
    const chunk = Buffer.concat(Array.from({ length: 1024 }, () => line)); // 1 MB
    const baseline = retainedBytes();
    let peak = 0;
    await client.send('From: billing@acme.test\r\nSubject: huge\r\n\r\n');
    for (let sent = 0; sent < 60; sent++) {
      await client.send(chunk);
      peak = Math.max(peak, retainedBytes() - baseline);
    }
    client.write('\r\n.\r\n');
    const reply = await client.read();
    expect(`${reply.code} ${reply.text}`).toMatch(/^552 5\.3\.4 /);
    // Socket and TLS buffers hold a few MB; the 60 MB message is never held.
    expect(peak).toBeLessThan(20 * 1024 * 1024);
    await client.command('MAIL FROM:<billing@acme.test>');
    await client.command('RCPT TO:<r@example.net>');
    expect((await client.data('From: billing@acme.test\r\n\r\nsmall')).code).toBe(250);
    client.close();
  });

  it('answers pipelined MAIL, RCPT and DATA (RFC 2920) in one TLS record', async () => {
    const counter = await tlsRecordCounter(relay.ports.smtps!);
    try {
      const { client } = await RawSmtpClient.connect(counter.port, { implicitTls: true });
      await client.command('EHLO client.test');
      expect((await client.authPlain(creds.username, creds.password)).code).toBe(235);
      const before = counter.records();
      client.write('MAIL FROM:<billing@acme.test>\r\nRCPT TO:<r@example.net>\r\nDATA\r\n');
      expect([(await client.read()).code, (await client.read()).code, (await client.read()).code]).toEqual([250, 250, 354]);
      expect(counter.records() - before).toBe(1);
      client.write('From: billing@acme.test\r\n\r\nbody\r\n.\r\n');
      expect((await client.read()).code).toBe(250);
      client.close();
    } finally {
      counter.close();
    }
  });

  it('answers 451 4.3.0 when the database refuses the write, and accepts again once it recovers', async () => {
    const db = new Database(relay.config.database);
    db.exec(`CREATE TRIGGER fail_insert BEFORE INSERT ON messages BEGIN SELECT RAISE(FAIL, 'simulated storage failure'); END;`);
    const client = await rawSession('smtps');
    await client.command('MAIL FROM:<billing@acme.test>');
    await client.command('RCPT TO:<r@example.net>');
    const failed = await client.data('From: billing@acme.test\r\n\r\nbody');
    expect(failed.code).toBe(451);
    expect(failed.text).toMatch(/^4\.3\.0 /);
    db.exec('DROP TRIGGER fail_insert');
    db.close();
    await client.command('MAIL FROM:<billing@acme.test>');
    await client.command('RCPT TO:<r@example.net>');
    expect((await client.data('From: billing@acme.test\r\n\r\nbody')).code).toBe(250);
    client.close();
  });

  it('picks up credentials and suppressions added while running, and revocations', async () => {
    const late = await addCredential(relay.storage, 'late-app', ['acme.test']);
    await transport('smtps', late).sendMail({ from: 'billing@acme.test', to: 'r@example.net', text: 'x' });
    await relay.storage.suppressions.add({ address: 'late@example.net', reason: 'manual', credential: null });
    const client = await rawSession('smtps');
    await client.command('MAIL FROM:<billing@acme.test>');
    expect((await client.command('RCPT TO:<late@example.net>')).code).toBe(550);
    client.close();
    await relay.storage.credentials.revoke('late-app');
    await expect(transport('smtps', late).sendMail({ from: 'billing@acme.test', to: 'r@example.net', text: 'x' })).rejects.toThrow(/535/);
  });
});
