/**
 * Secrets at rest and in logs: the database (which holds the DKIM private keys) is created 0600
 * in a 0700 directory, with its -wal and -shm files 0600 too, and the generated TLS key is 0600;
 * the log of a session with logins and a message never carries the password, the AUTH payload
 * or the body, and `log.redact_recipients` masks recipient local parts.
 */
import { statSync } from 'node:fs';
import path from 'node:path';
import nodemailer from 'nodemailer';
import { afterEach, describe, expect, it } from 'vitest';
import { startDeliveringRelay, type DeliveringRelay } from './helpers/delivering-relay.js';
import { startTestRelay, type TestRelay } from './helpers/relay.js';
import { waitFor } from './helpers/wait.js';

let relay: TestRelay | undefined;
let env: DeliveringRelay | undefined;

afterEach(async () => {
  await relay?.stop();
  await env?.stop();
  relay = env = undefined;
});

const mode = (file: string) => (statSync(file).mode & 0o777).toString(8);

describe('secrets at rest', () => {
  it('creates the data directory 0700 and the database with its -wal and -shm files 0600; the TLS keys are 0600', async () => {
    relay = await startTestRelay({ database: './private/data/relay.db' });
    const database = relay.config.database;
    expect(mode(path.dirname(database))).toBe('700');
    expect(mode(path.dirname(path.dirname(database)))).toBe('700');
    for (const file of [database, `${database}-wal`, `${database}-shm`]) expect([file, mode(file)]).toEqual([file, '600']);
    expect(relay.config.tls.pairs).toHaveLength(2);
    for (const { key } of relay.config.tls.pairs) expect([key, mode(key)]).toEqual([key, '600']);
  });
});

describe('secrets in logs', { timeout: 20_000 }, () => {
  it('never logs passwords, AUTH payloads or bodies, and masks recipient local parts with log.redact_recipients', async () => {
    const lines: string[] = [];
    env = await startDeliveringRelay(
      { log: { level: 'trace', redact_recipients: true } },
      {
        destination: { write: (line: string) => void lines.push(line) },
        sink: { rcpt: (address) => (address.startsWith('gone') ? `550 5.1.1 <${address}>: no such user` : undefined) },
      },
    );
    const { creds } = env;
    const wrong = 'Wr0ng-Passw0rd-Attempt';
    const connect = (pass: string) =>
      nodemailer.createTransport({
        host: '127.0.0.1',
        port: env!.relay.ports.smtps,
        secure: true,
        auth: { user: creds.username, pass },
        tls: { rejectUnauthorized: false },
      });
    await expect(connect(wrong).sendMail({ from: 'app@acme.test', to: 'x@example.net', text: 'x' })).rejects.toThrow(/535/);
    const body = 'Confidential-Body-Text-7f3a';
    await connect(creds.password).sendMail({
      from: 'app@acme.test',
      to: ['gone.person@example.net', 'kept.person@example.net'],
      subject: 'Quarterly figures',
      text: body,
    });
    await waitFor(
      () => lines.some((l) => l.includes('"status":"bounced"')) && lines.some((l) => l.includes('"status":"delivered"')),
      'delivery logged',
    );

    const log = lines.join('');
    expect(log).toContain('authentication failed');
    const plainPayload = (pass: string) => Buffer.from(`\0${creds.username}\0${pass}`).toString('base64');
    for (const secret of [creds.password, wrong, plainPayload(creds.password), plainPayload(wrong), body, 'Quarterly figures']) {
      expect(log).not.toContain(secret);
    }
    // The remote refusal names the recipient; the log shows only its domain.
    expect(log).toContain('***@example.net');
    expect(log).not.toContain('gone.person');
    expect(log).not.toContain('kept.person');
  });
});
