/**
 * DKIM private keys and webhook secrets encrypted at rest (secrets.key_file, RELAY_SECRETS_KEY):
 * the database holds only sealed text, yet the relay signs mail whose DKIM signature verifies
 * and signs webhooks with the real secret; without the key (or with another) the CLI and
 * `relay serve` refuse with a message naming the setting; `relay secrets rekey` encrypts plain
 * secrets and moves sealed ones to a new key.
 */
import { createPrivateKey, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';
import nodemailer from 'nodemailer';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/load.js';
import { openStorage } from '../src/queue/open.js';
import { startRelay, type RunningRelay } from '../src/relay.js';
import { verifySignature } from '../src/webhooks/sign.js';
import { assertBuilt, runCli, spawnCli } from './helpers/cli.js';
import { startDnsServer, type TestDnsServer } from './helpers/dns.js';
import { addCredential, addSenderDomain, writeTestConfig } from './helpers/relay.js';
import { startSink, type Sink } from './helpers/sink.js';
import { waitFor } from './helpers/wait.js';
import { startWebhookReceiver, type WebhookReceiver } from './helpers/webhook-receiver.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const stored = (database: string) => {
  const db = new Database(database, { readonly: true });
  try {
    return {
      dkim: db.prepare(`SELECT private_key_pem FROM domains ORDER BY name`).pluck().all() as string[],
      webhooks: db.prepare(`SELECT secret FROM webhooks ORDER BY id`).pluck().all() as string[],
    };
  } finally {
    db.close();
  }
};

describe('secrets encrypted at rest', { timeout: 120_000 }, () => {
  let sink: Sink;
  let dns: TestDnsServer;
  let hooks: WebhookReceiver;
  let relay: RunningRelay;

  it('stores only sealed keys, signs with them, and refuses to open without the key', async () => {
    assertBuilt();
    const dir = mkdtempSync(path.join(tmpdir(), 'relay-secrets-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(path.join(dir, 'secrets.key'), randomBytes(32).toString('base64'));
    sink = await startSink({ host: '127.0.0.2' });
    dns = await startDnsServer({
      'example.net': { mx: [{ exchange: 'mx.example.net', priority: 10 }] },
      'mx.example.net': { a: ['127.0.0.2'] },
    });
    hooks = await startWebhookReceiver();
    cleanups.push(
      () => sink.stop(),
      () => dns.stop(),
      () => hooks.stop(),
    );
    const configFile = writeTestConfig(
      { secrets: { key_file: './secrets.key' }, delivery: { paused: false, dns_servers: [dns.address], smtp_port: sink.port } },
      dir,
    );
    relay = await startRelay(loadConfig(configFile));
    let stopped = false;
    cleanups.push(() => (stopped ? undefined : relay.stop()));

    const dkim = new Map<string, string>();
    for (const record of await addSenderDomain(relay.storage, 'acme.test'))
      if (record.purpose === 'dkim') dkim.set(record.name, record.value);
    const creds = await addCredential(relay.storage, 'app', ['acme.test']);
    const webhook = await relay.storage.webhooks.add(hooks.url, 'whsec-in-clear', ['delivered']);
    expect(webhook.secret).toBe('whsec-in-clear');

    // What a copy of the database holds: sealed text, no key a signer could load.
    const atRest = stored(relay.config.database);
    expect(atRest.dkim[0]).toMatch(/^enc:v1:[0-9a-f]{16}:/);
    expect(atRest.dkim[0]).not.toMatch(/PRIVATE KEY/);
    expect(() => createPrivateKey(atRest.dkim[0]!)).toThrow();
    expect(atRest.webhooks).toEqual([expect.stringMatching(/^enc:v1:/)]);
    expect(atRest.webhooks[0]).not.toContain('whsec-in-clear');

    const transport = nodemailer.createTransport({
      host: '127.0.0.1',
      port: relay.ports.smtps,
      secure: true,
      auth: { user: creds.username, pass: creds.password },
      tls: { rejectUnauthorized: false },
    });
    await transport.sendMail({ from: 'app@acme.test', to: 'someone@example.net', subject: 'sealed', text: 'signed with a sealed key' });
    transport.close();
    const message = await waitFor(() => sink.messages[0], 'the message at the MX');
    const { results } = await dkimVerify(message.raw, {
      resolver: async (name: string, type: string) => {
        const value = dkim.get(name);
        if (type === 'TXT' && value) return [value.match(/.{1,255}/g)!];
        throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' });
      },
    });
    expect(results.map((r) => r.status.result)).toEqual(['pass']);
    const hook = await waitFor(() => hooks.received[0], 'the delivered webhook');
    expect(verifySignature('whsec-in-clear', hook.body, String(hook.headers['relay-signature']))).toBe(true);

    await relay.stop();
    stopped = true;

    // The same database without the key, or with another: the CLI and `relay serve` name the setting.
    const keyless = writeTestConfig({ database: relay.config.database }, mkdtempSync(path.join(tmpdir(), 'relay-keyless-')));
    cleanups.push(() => rmSync(path.dirname(keyless), { recursive: true, force: true }));
    const listed = await runCli(['--config', keyless, 'domain', 'list'], { cwd: dir });
    expect(listed.code).toBe(2);
    expect(listed.stderr).toMatch(/holds 2 encrypted DKIM keys or webhook secrets: set secrets.key_file in .* or RELAY_SECRETS_KEY/);
    const serve = spawnCli(['--config', keyless, 'serve'], { cwd: dir });
    expect(await serve.exited).toBe(2);
    expect(serve.output()).toMatch(/set secrets.key_file in .* or RELAY_SECRETS_KEY/);

    const other = await runCli(['--config', keyless, 'domain', 'list'], {
      cwd: dir,
      env: { RELAY_SECRETS_KEY: randomBytes(32).toString('hex') },
    });
    expect(other.code).toBe(2);
    expect(other.stderr).toMatch(
      /DKIM key of acme.test is encrypted under key [0-9a-f]{16}, but secrets.key_file or RELAY_SECRETS_KEY gives key/,
    );
    const withEnv = await runCli(['--config', keyless, 'domain', 'list'], {
      cwd: dir,
      env: { RELAY_SECRETS_KEY: readFileSync(path.join(dir, 'secrets.key'), 'utf8') },
    });
    expect(withEnv.code, withEnv.stderr).toBe(0);
    expect((await runCli(['--config', keyless, 'domain', 'list'], { cwd: dir, env: { RELAY_SECRETS_KEY: 'too-short' } })).stderr).toMatch(
      /RELAY_SECRETS_KEY: expected 32 bytes/,
    );
  });

  it('relay secrets rekey encrypts plain secrets, then moves them to a new key', async () => {
    assertBuilt();
    const configFile = writeTestConfig();
    const dir = path.dirname(configFile);
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const cli = (...args: string[]) => runCli(['--config', configFile, ...args], { cwd: dir });
    const setKeyFile = (file: string | undefined) => writeTestConfig(file ? { secrets: { key_file: file } } : {}, dir);

    expect((await cli('domain', 'add', 'acme.test')).code).toBe(0);
    expect((await cli('webhook', 'add', 'https://hooks.example/relay')).code).toBe(0);
    const plain = stored(loadConfig(configFile).database);
    expect(plain.dkim[0]).toMatch(/BEGIN PRIVATE KEY/);

    expect((await cli('secrets', 'new-key', 'one.key')).code).toBe(0);
    expect((await cli('secrets', 'new-key', 'one.key')).stderr).toMatch(/cannot create one.key: EEXIST/);
    const first = await cli('secrets', 'rekey', '--new-key-file', 'one.key');
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/Encrypted 2 secrets under key ([0-9a-f]{16}) \(2 were stored in plain text\)/);
    const underOne = stored(loadConfig(configFile).database);
    expect([...underOne.dkim, ...underOne.webhooks]).toEqual([expect.stringMatching(/^enc:v1:/), expect.stringMatching(/^enc:v1:/)]);
    expect((await cli('domain', 'list')).stderr).toMatch(/set secrets.key_file/);

    setKeyFile('./one.key');
    const opened = await openStorage(loadConfig(configFile));
    try {
      expect((await opened.domains.get('acme.test'))!.privateKeyPem).toBe(plain.dkim[0]);
      expect((await opened.webhooks.list())[0]!.secret).toBe(plain.webhooks[0]);
    } finally {
      await opened.close();
    }

    expect((await cli('secrets', 'new-key', 'two.key')).code).toBe(0);
    const second = await cli('secrets', 'rekey', '--new-key-file', 'two.key', '--json');
    expect(second.code, second.stderr).toBe(0);
    expect(JSON.parse(second.stdout)).toMatchObject({ secrets: 2, were_plain: 0 });
    expect((await cli('domain', 'list')).stderr).toMatch(/encrypted under key \w+, but secrets.key_file or RELAY_SECRETS_KEY gives key/);

    setKeyFile('./two.key');
    const reopened = await openStorage(loadConfig(configFile));
    try {
      expect((await reopened.domains.get('acme.test'))!.privateKeyPem).toBe(plain.dkim[0]);
      expect((await reopened.webhooks.list())[0]!.secret).toBe(plain.webhooks[0]);
    } finally {
      await reopened.close();
    }
    const audited = JSON.parse((await cli('audit', '--json')).stdout) as { action: string; change: Record<string, unknown> }[];
    expect(audited.filter((e) => e.action === 'secrets.rekey').map((e) => e.change.secrets)).toEqual([2, 2]);
    expect((await cli('audit', 'verify')).code).toBe(0);
  });
});
