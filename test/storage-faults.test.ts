/**
 * Storage faults seen from a client: a database locked by another process beyond busy_timeout,
 * a full disk (a small tmpfs, when the tests run as root), and reads that fail in the middle of
 * a session (a damaged page). Each gets a 4xx 4.3.x or 454 4.7.0, never a 5xx or a crash, and
 * the relay takes mail again once the fault clears.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import nodemailer, { type SendMailOptions } from 'nodemailer';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { addCredential, addSenderDomain, startTestRelay, type TestRelay } from './helpers/relay.js';
import { RawSmtpClient } from './helpers/smtp-client.js';

let relay: TestRelay | undefined;
let creds: { username: string; password: string };
const mounts: string[] = [];

async function start(overrides: Record<string, unknown> = {}) {
  relay = await startTestRelay(overrides);
  await addSenderDomain(relay.storage, 'acme.test');
  creds = await addCredential(relay.storage, 'app', ['acme.test']);
  return relay;
}

afterEach(async () => {
  await relay?.stop();
  relay = undefined;
});

afterAll(() => {
  for (const dir of mounts) execFileSync('umount', ['-l', dir]);
});

function send(text = 'hello', extra: SendMailOptions = {}) {
  return nodemailer
    .createTransport({
      host: '127.0.0.1',
      port: relay!.ports.smtps,
      secure: true,
      auth: { user: creds.username, pass: creds.password },
      tls: { rejectUnauthorized: false },
    })
    .sendMail({ from: 'app@acme.test', to: 'someone@example.net', subject: 'fault', text, ...extra });
}

const failure = (promise: Promise<unknown>) =>
  promise.then(
    () => ({ responseCode: 250, response: '250 accepted' }),
    (err: { responseCode?: number; response?: string }) => err,
  );

/** Mounts a tmpfs of `size` (root only); undefined when that is not possible here. */
function tmpfs(size: string): string | undefined {
  const dir = mkdtempSync(path.join(tmpdir(), 'relay-tmpfs-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { stdio: 'ignore' });
  } catch {
    rmSync(dir, { recursive: true, force: true });
    return undefined;
  }
  mounts.push(dir);
  return dir;
}

describe('storage faults', { timeout: 30_000 }, () => {
  it('answers 451 4.3.0 while another process holds the database locked past busy_timeout, then accepts', async () => {
    await start();
    const other = new Database(relay!.config.database);
    other.exec('BEGIN EXCLUSIVE');
    const locked = await failure(send());
    other.exec('COMMIT');
    other.close();
    expect(locked.responseCode).toBe(451);
    expect(locked.response).toMatch(/^451 4\.3\.0 /);
    expect((await send()).response).toMatch(/^250 2\.0\.0 Ok: queued as /);
  });

  it('answers 452 4.3.1 when the disk is full, then accepts once there is room again', async (ctx) => {
    const mount = tmpfs('4m');
    if (!mount) return ctx.skip();
    const dataDir = path.join(mount, 'data');
    mkdirSync(dataDir);
    await start({ database: path.join(dataDir, 'relay.db') });
    await send('warm-up');
    // Leave well under the message's size free.
    const filler = path.join(mount, 'filler');
    try {
      for (let i = 0; ; i++) writeFileSync(filler, Buffer.alloc(64 * 1024), { flag: 'a' });
    } catch {
      // ENOSPC: the disk is full.
    }
    const full = await failure(send('x'.repeat(300_000)));
    expect(full.responseCode).toBe(452);
    expect(full.response).toMatch(/^452 4\.3\.1 /);
    rmSync(filler);
    expect((await send('x'.repeat(300_000))).response).toMatch(/^250 /);
  });

  it('answers 454 4.7.0 at AUTH and 451 4.3.0 at MAIL when reads fail, without crashing, and recovers', async () => {
    await start();
    const { credentials, domains } = relay!.storage;
    const damaged = async (): Promise<never> => {
      throw Object.assign(new Error('database disk image is malformed'), { code: 'SQLITE_CORRUPT' });
    };
    const { byUsername } = credentials;
    const { get: getDomain } = domains;
    credentials.byUsername = damaged;
    const { client } = await RawSmtpClient.connect(relay!.ports.smtps!, { implicitTls: true });
    await client.command('EHLO client.test');
    const auth = await client.authPlain(creds.username, creds.password);
    expect([auth.code, auth.text.slice(0, 5)]).toEqual([454, '4.7.0']);
    credentials.byUsername = byUsername;
    expect((await client.authPlain(creds.username, creds.password)).code).toBe(235);
    domains.get = damaged;
    const mail = await client.command('MAIL FROM:<app@acme.test>');
    expect([mail.code, mail.text.slice(0, 5)]).toEqual([451, '4.3.0']);
    domains.get = getDomain;
    expect((await client.command('MAIL FROM:<app@acme.test>')).code).toBe(250);
    client.close();
    expect((await send()).response).toMatch(/^250 /);
  });
});
