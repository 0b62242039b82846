/**
 * DKIM key lifecycle end to end: `relay domain rotate-key`, `verify` and `activate-key` as real
 * CLI processes beside a running relay, the test DNS server publishing (or not) each selector,
 * and every signature checked at the MX against what DNS publishes.
 */
import { promises as dns } from 'node:dns';
import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../src/log.js';
import { RetentionPurger } from '../src/retention/purger.js';
import { assertBuilt, runCli } from './helpers/cli.js';
import { startDeliveringRelay, type DeliveringRelay } from './helpers/delivering-relay.js';
import { addCredential } from './helpers/relay.js';
import { RawSmtpClient } from './helpers/smtp-client.js';
import { waitFor } from './helpers/wait.js';

const require = createRequire(import.meta.url);
const { dkimVerify } = require('mailauth/lib/dkim/verify') as {
  dkimVerify: (
    msg: Buffer,
    opts: { resolver: (name: string, type: string) => Promise<unknown> },
  ) => Promise<{ results: { status: { result: string }; signingDomain: string; selector: string; algo: string }[] }>;
};

interface KeyJson {
  selector: string;
  algorithm: string;
  state: string;
  published: string | null;
  retireAt: string | null;
  record: { type: string; name: string; value: string };
  action: string;
}

async function cli(env: DeliveringRelay, ...args: string[]) {
  return runCli(['--config', env.relay.configFile, ...args], { cwd: env.relay.dir });
}

async function cliJson<T>(env: DeliveringRelay, ...args: string[]): Promise<T> {
  const result = await cli(env, ...args, '--json');
  if (result.code !== 0) throw new Error(`relay ${args.join(' ')} exited ${result.code}: ${result.stderr}`);
  return JSON.parse(result.stdout) as T;
}

const keysOf = async (env: DeliveringRelay, domain: string) => (await cliJson<{ keys: KeyJson[] }>(env, 'domain', 'keys', domain)).keys;

function publish(env: DeliveringRelay, name: string, value: string) {
  const entry = env.dns.records.get(name);
  env.dns.setZone(name, { ...entry, txt: [...(entry?.txt ?? []), value] });
}

/** Publishes what an operator of an already verified domain has published: ownership and DKIM. */
async function publishSetup(env: DeliveringRelay, domain: string) {
  const record = (await env.relay.storage.domains.get(domain))!;
  publish(env, `_relay-verification.${domain}`, `relay-verification=${record.verificationToken}`);
  for (const [name, value] of env.dkim) publish(env, name, value);
}

let sent = 0;

/** Sends one message from `from` and returns it as the MX received it, with the DKIM results DNS gives. */
async function sendAndVerify(env: DeliveringRelay, from: string, creds = env.creds) {
  const token = `rotation-${++sent}`;
  const { client } = await RawSmtpClient.connect(env.relay.ports.smtps!, { implicitTls: true });
  try {
    await client.command('EHLO client.test');
    expect((await client.authPlain(creds.username, creds.password)).code).toBe(235);
    expect((await client.command(`MAIL FROM:<${from}>`)).code).toBe(250);
    expect((await client.command('RCPT TO:<someone@example.net>')).code).toBe(250);
    expect((await client.data(`From: ${from}\r\nTo: someone@example.net\r\nSubject: ${token}\r\n\r\nHello.\r\n`)).code).toBe(250);
  } finally {
    client.close();
  }
  const message = await waitFor(() => env.sink.messages.find((m) => m.raw.includes(token)), `${token} at the MX`);
  const resolver = new dns.Resolver();
  resolver.setServers([env.dns.address]);
  const { results } = await dkimVerify(message.raw, { resolver: (name, type) => resolver.resolve(name, type as 'TXT') });
  return results;
}

/** Sends until a message is signed by `selector` (a running relay takes up an activation within seconds). */
async function signedBy(env: DeliveringRelay, from: string, selector: string) {
  let last: Awaited<ReturnType<typeof sendAndVerify>> = [];
  await waitFor(async () => {
    last = await sendAndVerify(env, from);
    return last.some((r) => r.selector === selector);
  }, `mail signed by ${selector}`);
  return last;
}

beforeAll(() => assertBuilt());

describe('DKIM key rotation, step by step', { timeout: 180_000 }, () => {
  let env: DeliveringRelay;

  beforeAll(async () => {
    env = await startDeliveringRelay({ signing: { retire_after: '1h' } });
    await publishSetup(env, 'acme.test');
  });

  afterAll(async () => {
    await env?.stop();
  });

  it('signs with the new key only once its record is published and it is activated; the old key retires, then goes', async () => {
    const before = await sendAndVerify(env, 'app@acme.test');
    expect(before.map((r) => [r.selector, r.status.result])).toEqual([['relay', 'pass']]);

    const rotated = await cliJson<{ keys: KeyJson[] }>(env, 'domain', 'rotate-key', 'acme.test');
    expect(rotated.keys).toHaveLength(1);
    const next = rotated.keys[0]!;
    expect(next).toMatchObject({ algorithm: 'rsa', state: 'pending', published: null });
    expect(next.selector).toMatch(/^relay\d{8}$/);
    expect(next.selector > 'relay').toBe(true);
    expect(next.record.name).toBe(`${next.selector}._domainkey.acme.test`);
    expect(next.action).toContain(`publish: TXT ${next.record.name}`);

    // Not published: activation is refused and signing stays with the current key.
    const refused = await cli(env, 'domain', 'activate-key', 'acme.test');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('the new DKIM key of acme.test is not verified yet, so signing stays with the current key');
    expect(refused.stderr).toContain(`no DKIM key at ${next.record.name}`);
    expect((await sendAndVerify(env, 'app@acme.test')).map((r) => [r.selector, r.status.result])).toEqual([['relay', 'pass']]);

    publish(env, next.record.name, next.record.value);
    const verified = await cliJson<{ verified: boolean; keys: KeyJson[] }>(env, 'domain', 'verify', 'acme.test');
    expect(verified.verified).toBe(true);
    const pending = verified.keys.find((k) => k.selector === next.selector)!;
    expect(pending.state).toBe('pending');
    expect(pending.published).not.toBeNull();
    expect(pending.action).toBe('published: run `relay domain activate-key acme.test` to sign with it');

    const activated = await cli(env, 'domain', 'activate-key', 'acme.test');
    expect(activated.code).toBe(0);
    expect(activated.stdout).toContain(`acme.test now signs with ${next.selector}`);

    const keys = await keysOf(env, 'acme.test');
    expect(keys.map((k) => [k.selector, k.state])).toEqual([
      ['relay', 'retiring'],
      [next.selector, 'active'],
    ]);
    const retireAt = Date.parse(keys[0]!.retireAt!);
    const activatedAt = (await env.relay.storage.dkimKeys.active('acme.test'))[0]!.activatedAt!;
    expect(retireAt - activatedAt).toBe(3_600_000);
    expect(keys[0]!.action).toBe(`keep published until ${keys[0]!.retireAt}, then delete`);
    const text = await cli(env, 'domain', 'records', 'acme.test');
    expect(text.stdout).toMatch(new RegExp(`relay +rsa +retiring until ${keys[0]!.retireAt!.replace(/[.]/g, '\\.')}`));
    expect(text.stdout).toContain(`Name:  ${next.record.name}`);
    expect(text.stdout).toContain('Name:  relay._domainkey.acme.test');

    // The running relay takes the activation up without a restart.
    const after = await signedBy(env, 'app@acme.test', next.selector);
    expect(after.map((r) => [r.selector, r.status.result, r.signingDomain])).toEqual([[next.selector, 'pass', 'acme.test']]);

    // Retirement: the relay's periodic maintenance, run at a time past retire_after.
    const lines: string[] = [];
    const purger = new RetentionPurger({
      storage: env.relay.storage,
      config: env.relay.config,
      logger: createLogger('info', { destination: { write: (line: string) => void lines.push(line) } }),
    });
    await purger.purge(retireAt - 1);
    expect((await keysOf(env, 'acme.test'))[0]!.state).toBe('retiring');
    await purger.purge(retireAt);
    const retired = (await keysOf(env, 'acme.test'))[0]!;
    expect(retired).toMatchObject({ selector: 'relay', state: 'retired', action: 'delete the TXT record at relay._domainkey.acme.test' });
    expect(lines.some((l) => l.includes('DKIM key retired: delete the TXT record at relay._domainkey.acme.test'))).toBe(true);
    expect((await env.relay.storage.dkimKeys.list('acme.test'))[0]!.privateKeyPem).toBeNull();

    // Once the record is gone from DNS, verification forgets the retired key.
    env.dns.setZone('relay._domainkey.acme.test', undefined);
    await cliJson(env, 'domain', 'verify', 'acme.test');
    expect((await keysOf(env, 'acme.test')).map((k) => [k.selector, k.state])).toEqual([[next.selector, 'active']]);
    expect((await sendAndVerify(env, 'app@acme.test')).map((r) => [r.selector, r.status.result])).toEqual([[next.selector, 'pass']]);
  });

  it('with --auto, `relay domain verify` activates the new key once it finds it published', async () => {
    const [current] = await env.relay.storage.dkimKeys.active('acme.test');
    const rotated = await cli(env, 'domain', 'rotate-key', 'acme.test', '--auto', '--algorithm', 'ed25519');
    expect(rotated.code).toBe(0);
    expect(rotated.stdout).toContain('It signs as soon as it is found published');
    const next = (await keysOf(env, 'acme.test')).find((k) => k.state === 'pending')!;
    expect(next).toMatchObject({ algorithm: 'ed25519', selector: `${current!.selector}b` });

    // A second rotation while one is pending is refused.
    const again = await cli(env, 'domain', 'rotate-key', 'acme.test');
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(`acme.test already has a new key waiting (selector ${next.selector})`);

    const unpublished = await cliJson<{ keys: KeyJson[] }>(env, 'domain', 'verify', 'acme.test');
    expect(unpublished.keys.find((k) => k.selector === next.selector)!.state).toBe('pending');

    publish(env, next.record.name, next.record.value);
    const verified = await cli(env, 'domain', 'verify', 'acme.test');
    expect(verified.stdout).toContain(`The new DKIM key is published and now signs (${next.selector})`);
    expect((await keysOf(env, 'acme.test')).map((k) => [k.selector, k.state])).toEqual([
      [current!.selector, 'retiring'],
      [next.selector, 'active'],
    ]);
    const after = await signedBy(env, 'app@acme.test', next.selector);
    expect(after.map((r) => [r.selector, r.algo, r.status.result])).toEqual([[next.selector, 'ed25519-sha256', 'pass']]);
  });

  it('dual signing: a domain added with --algorithm both signs with RSA and Ed25519, each verified', async () => {
    const added = await cliJson<{ records: { name: string; value: string; purpose: string }[] }>(
      env,
      'domain',
      'add',
      'dual.test',
      '--algorithm',
      'both',
      '--selector',
      'relay202611',
    );
    const dkim = added.records.filter((r) => r.purpose === 'dkim');
    expect(dkim.map((r) => [r.name, r.value.slice(0, 16)])).toEqual([
      ['relay202611-rsa._domainkey.dual.test', 'v=DKIM1; k=rsa; '],
      ['relay202611-ed25519._domainkey.dual.test', 'v=DKIM1; k=ed255'],
    ]);
    for (const record of added.records) publish(env, record.name, record.value);
    expect((await cliJson<{ verified: boolean }>(env, 'domain', 'verify', 'dual.test')).verified).toBe(true);
    const creds = await addCredential(env.relay.storage, 'dual-app', ['dual.test']);

    const results = await sendAndVerify(env, 'app@dual.test', creds);
    expect(results.map((r) => [r.selector, r.algo, r.status.result]).sort()).toEqual([
      ['relay202611-ed25519', 'ed25519-sha256', 'pass'],
      ['relay202611-rsa', 'rsa-sha256', 'pass'],
    ]);

    // A rotation keeps both kinds, under one new stem.
    const rotated = await cliJson<{ keys: KeyJson[] }>(env, 'domain', 'rotate-key', 'dual.test');
    expect(rotated.keys.map((k) => [k.selector.replace(/^relay\d{8}/, 'STEM'), k.algorithm, k.state]).sort()).toEqual([
      ['STEM-ed25519', 'ed25519', 'pending'],
      ['STEM-rsa', 'rsa', 'pending'],
    ]);
  });
});

describe('DKIM key rotation with --auto in a running relay', { timeout: 120_000 }, () => {
  let env: DeliveringRelay;

  beforeAll(async () => {
    env = await startDeliveringRelay({ signing: { key_check_interval: '200ms' } });
    await publishSetup(env, 'acme.test');
  });

  afterAll(async () => {
    await env?.stop();
  });

  it('activates the new key on its own once the record is published, and signs with it', async () => {
    const rotated = await cliJson<{ keys: KeyJson[] }>(env, 'domain', 'rotate-key', 'acme.test', '--auto');
    const next = rotated.keys[0]!;
    publish(env, next.record.name, next.record.value);
    await waitFor(
      async () => (await env.relay.storage.dkimKeys.active('acme.test')).some((k) => k.selector === next.selector),
      'auto activation',
    );
    expect((await keysOf(env, 'acme.test')).map((k) => [k.selector, k.state])).toEqual([
      ['relay', 'retiring'],
      [next.selector, 'active'],
    ]);
    const results = await signedBy(env, 'app@acme.test', next.selector);
    expect(results.map((r) => [r.selector, r.status.result])).toEqual([[next.selector, 'pass']]);
  });
});
