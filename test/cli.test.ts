/**
 * Runs the compiled CLI (`node bin/relay.js`, so run `npx tsc` first) as a real process against
 * a temporary SQLite database, with an in-process DNS server for `relay domain verify`.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, runCli, type CliResult } from './helpers/cli.js';
import { startDnsServer, type TestDnsServer } from './helpers/dns.js';

const HOSTNAME = 'relay.example.net';

let dir: string;
let configFile: string;
let dns: TestDnsServer;

const run = (args: string[], env: NodeJS.ProcessEnv = {}) => runCli(args, { cwd: dir, env });
const relay = (...args: string[]) => run(['--config', configFile, ...args]);
/** Publishes TXT records at a name (the DNS server splits values over 255 bytes into several strings). */
const publish = (name: string, ...values: string[]) => dns.setZone(name, { txt: values });

function json<T = any>(result: CliResult): T {
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  return JSON.parse(result.stdout) as T;
}

beforeAll(async () => {
  assertBuilt();
  dir = mkdtempSync(path.join(tmpdir(), 'relay-cli-'));
  dns = await startDnsServer();
  configFile = path.join(dir, 'relay.yaml');
  writeFileSync(
    configFile,
    [`hostname: ${HOSTNAME}`, 'database: ./data/relay.db', 'delivery:', `  dns_servers: ["${dns.address}"]`, '  dns_timeout: 2s', ''].join(
      '\n',
    ),
  );
});

afterAll(async () => {
  await dns?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('relay domain', () => {
  it('adds a domain and prints its records as JSON', async () => {
    const added = json(await relay('domain', 'add', 'Acme.Test', '--selector', 'sel1', '--json'));
    expect(added.domain).toBe('acme.test');
    expect(added.selector).toBe('sel1');
    expect(added.records.map((r: { purpose: string }) => r.purpose)).toEqual(['verification', 'dkim', 'spf', 'dmarc']);
    const byPurpose = Object.fromEntries(added.records.map((r: { purpose: string }) => [r.purpose, r]));
    expect(byPurpose.verification).toMatchObject({ type: 'TXT', name: '_relay-verification.acme.test' });
    expect(byPurpose.verification.value).toMatch(/^relay-verification=[0-9a-f]{32}$/);
    expect(byPurpose.dkim).toMatchObject({ type: 'TXT', name: 'sel1._domainkey.acme.test' });
    expect(byPurpose.dkim.value).toMatch(/^v=DKIM1; k=rsa; p=[A-Za-z0-9+/=]{300,}$/);
    expect(byPurpose.spf).toMatchObject({ name: 'acme.test', value: `v=spf1 a:${HOSTNAME} ~all` });
    expect(byPurpose.dmarc).toMatchObject({ name: '_dmarc.acme.test', value: 'v=DMARC1; p=none; rua=mailto:dmarc-reports@acme.test' });

    const again = json(await relay('domain', 'records', 'acme.test', '--json'));
    expect(again).toEqual(added);
  });

  it('refuses to add the same domain twice', async () => {
    const result = await relay('domain', 'add', 'acme.test');
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^relay: domain acme.test already exists/);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('adds an ed25519 domain with a dated default selector', async () => {
    const added = json(await relay('domain', 'add', 'ed.test', '--algorithm', 'ed25519', '--json'));
    expect(added.selector).toMatch(/^relay\d{6}$/);
    expect(added.records[1].value).toMatch(/^v=DKIM1; k=ed25519; p=[A-Za-z0-9+/]{43}=$/);
  });

  it('lists domains as JSON and as a table', async () => {
    const domains = json(await relay('domain', 'list', '--json'));
    expect(domains).toHaveLength(2);
    expect(domains[0]).toMatchObject({ name: 'acme.test', selector: 'sel1', algorithm: 'rsa', verified: false });
    expect(Object.keys(domains[0]).sort()).toEqual(['algorithm', 'created', 'name', 'selector', 'verified']);

    const table = await relay('domain', 'list');
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^DOMAIN\s+SELECTOR\s+ALGORITHM\s+VERIFIED\s+CREATED\n/);
    expect(table.stdout).toMatch(/\nacme\.test\s+sel1\s+rsa\s+no\s+\d{4}-/);
  });

  it('rejects an unknown --algorithm as a usage error', async () => {
    const result = await relay('domain', 'add', 'x.test', '--algorithm', 'dsa');
    expect(result.code).toBe(2);
  });
});

describe('relay domain verify', () => {
  let records: Record<string, { name: string; value: string }>;

  beforeAll(async () => {
    const shown = json(await relay('domain', 'records', 'acme.test', '--json'));
    records = Object.fromEntries(shown.records.map((r: { purpose: string }) => [r.purpose, r]));
  });

  async function verify() {
    const result = await relay('domain', 'verify', 'acme.test', '--json');
    expect(result.stderr).toBe('');
    return { code: result.code, ...JSON.parse(result.stdout) };
  }

  it('reports every record missing when nothing is published', async () => {
    dns.records.clear();
    const result = await verify();
    expect(result.code).toBe(1);
    expect(result.domain).toBe('acme.test');
    expect(result.verified).toBe(false);
    for (const check of ['verification', 'dkim', 'spf', 'dmarc']) expect(result.checks[check].status).toBe('missing');
    expect(result.checks.dmarc.message).toContain('_dmarc.acme.test');
  });

  it('passes once the records are published, joining split TXT strings', async () => {
    publish(records.verification!.name, records.verification!.value);
    publish(records.dkim!.name, records.dkim!.value);
    publish('acme.test', 'google-site-verification=abc', records.spf!.value);
    publish(records.dmarc!.name, records.dmarc!.value);
    const result = await verify();
    expect(result.code).toBe(0);
    expect(result.verified).toBe(true);
    for (const check of ['verification', 'dkim', 'spf', 'dmarc']) expect(result.checks[check].status).toBe('found');

    const [listed] = json(await relay('domain', 'list', '--json'));
    expect(listed.verified).toBe(true);
  });

  it('explains mismatched records', async () => {
    publish(records.verification!.name, 'relay-verification=0000');
    publish(records.dkim!.name, 'v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAsomethingelse');
    publish('acme.test', 'v=spf1 include:_spf.google.com ~all');
    const result = await verify();
    expect(result.code).toBe(1);
    expect(result.verified).toBe(false);
    expect(result.checks.verification.status).toBe('mismatched');
    expect(result.checks.dkim.status).toBe('mismatched');
    expect(result.checks.dkim.message).toContain('different public key');
    expect(result.checks.spf.status).toBe('mismatched');
    expect(result.checks.spf.message).toContain(`a:${HOSTNAME}`);

    publish('acme.test', `v=spf1 a:${HOSTNAME} ~all`, 'v=spf1 mx -all');
    const twoSpf = await verify();
    expect(twoSpf.checks.spf.status).toBe('mismatched');
    expect(twoSpf.checks.spf.message).toContain('2 SPF records');
  });

  it('reports a DNS failure as a temporary error without revoking an earlier verification', async () => {
    publish(records.verification!.name, records.verification!.value);
    expect((await verify()).code).toBe(0);

    dns.setZone(records.verification!.name, { rcode: 'SERVFAIL' });
    try {
      const result = await verify();
      expect(result.code).toBe(1);
      expect(result.checks.verification.status).toBe('error');
      expect(result.checks.verification.message).toContain('temporarily');
      const [listed] = json(await relay('domain', 'list', '--json'));
      expect(listed.verified).toBe(true);
    } finally {
      publish(records.verification!.name, records.verification!.value);
    }
  });

  it('prints each check in words', async () => {
    const result = await relay('domain', 'verify', 'acme.test');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('acme.test is verified');
    expect(result.stdout).toMatch(/ownership\s+found\s+TXT record at _relay-verification\.acme\.test/);
  });

  it('fails for an unknown domain', async () => {
    const result = await relay('domain', 'verify', 'unknown.test');
    expect(result.code).toBe(1);
    expect(result.stderr).toBe('relay: unknown domain unknown.test: add it first\n');
  });
});

describe('relay credential', () => {
  it('requires the domains to exist', async () => {
    const result = await relay('credential', 'add', 'app', '--domain', 'acme.test', '--domain', 'nope.test');
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('unknown domain nope.test');
  });

  it('creates a credential and shows the password once', async () => {
    const created = json(await relay('credential', 'add', 'app', '--domain', 'acme.test', '--domain', 'ed.test', '--json'));
    expect(created).toMatchObject({ name: 'app', username: 'app', domains: ['acme.test', 'ed.test'] });
    expect(created.password).toMatch(/^[A-Za-z0-9_-]{24}$/);

    const human = await relay('credential', 'add', 'other', '--domain', 'acme.test');
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/Password: \S{24}/);
    expect(human.stdout).toContain('will not be shown again');
  });

  it('lists credentials without their password hashes', async () => {
    const result = await relay('credential', 'list', '--json');
    expect(result.stdout).not.toContain('scrypt');
    const list = json(result);
    expect(list.map((c: { name: string }) => c.name)).toEqual(['app', 'other']);
    expect(list[0]).toMatchObject({ username: 'app', domains: ['acme.test', 'ed.test'], revoked: null });
  });

  it('revokes a credential, and fails for an unknown one', async () => {
    expect((await relay('credential', 'revoke', 'other')).code).toBe(0);
    const [, other] = json(await relay('credential', 'list', '--json'));
    expect(other.revoked).toMatch(/^\d{4}-/);

    const unknown = await relay('credential', 'revoke', 'ghost');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toBe('relay: unknown credential ghost\n');
  });
});

describe('relay suppression', () => {
  it('adds, lists and removes addresses', async () => {
    expect((await relay('suppression', 'add', 'bob@example.org', '--reason', 'asked us to stop')).code).toBe(0);
    const duplicate = await relay('suppression', 'add', 'bob@example.org');
    expect(duplicate.code).toBe(1);

    const list = json(await relay('suppression', 'list', '--json'));
    expect(list).toEqual([{ address: 'bob@example.org', credential: null, reason: 'asked us to stop', created: expect.any(String) }]);

    expect((await relay('suppression', 'remove', 'bob@example.org')).code).toBe(0);
    expect(json(await relay('suppression', 'list', '--json'))).toEqual([]);
    expect((await relay('suppression', 'remove', 'bob@example.org')).code).toBe(1);
  });

  it('scopes an address to one credential with --credential', async () => {
    expect((await relay('suppression', 'add', 'carl@example.org', '--credential', 'app')).code).toBe(0);
    expect((await relay('suppression', 'add', 'carl@example.org', '--credential', 'app')).code).toBe(1);
    expect((await relay('suppression', 'add', 'carl@example.org', '--credential', 'ghost')).stderr).toBe(
      'relay: unknown credential ghost\n',
    );
    expect(json(await relay('suppression', 'list', '--json'))).toEqual([
      { address: 'carl@example.org', credential: 'app', reason: 'added by operator', created: expect.any(String) },
    ]);
    expect(json(await relay('suppression', 'list', '--credential', 'other', '--json'))).toEqual([]);
    // Without --credential, remove means the entry for every credential, which does not exist.
    expect((await relay('suppression', 'remove', 'carl@example.org')).code).toBe(1);
    expect((await relay('suppression', 'remove', 'carl@example.org', '--credential', 'app')).code).toBe(0);
    expect(json(await relay('suppression', 'list', '--json'))).toEqual([]);
  });
});

describe('relay events, queue and stats', () => {
  it('prints an empty event list as JSON', async () => {
    expect(json(await relay('events', '--json'))).toEqual([]);
  });

  it('rejects an unknown --status as a usage error', async () => {
    const result = await relay('events', '--status', 'lost');
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('Allowed choices are queued, delivered, deferred, bounced, expired, suppressed');
  });

  it('fails for an unknown queue ID', async () => {
    const result = await relay('queue', 'delete', 'nope');
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^relay: no message with queue ID nope/);
  });

  it('reports stats as JSON', async () => {
    const stats = json(await relay('stats', '--json'));
    expect(stats.queue).toEqual({ messages: 0, recipients_pending: 0, oldest_received_at: null });
    expect(stats.by_status.delivered).toBe(0);
  });
});

describe('config handling', () => {
  it('reads the config named by $RELAY_CONFIG', async () => {
    const result = await run(['domain', 'list', '--json'], { RELAY_CONFIG: configFile });
    expect(json(result)).toHaveLength(2);
  });

  it('exits 2 with a message naming the bad key and no stack trace', async () => {
    const bad = path.join(dir, 'bad.yaml');
    writeFileSync(bad, 'database: ./data/relay.db\ndelivery:\n  smtp_port: "twenty-five"\n');
    const result = await run(['--config', bad, 'domain', 'list']);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/^relay: invalid config in .*bad\.yaml/);
    expect(result.stderr).toContain('delivery.smtp_port');
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });
});
