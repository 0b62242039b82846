/**
 * Per-credential rate limits and quotas, counted per recipient: set with the CLI on the database
 * a running relay uses, enforced at RCPT with 451 4.7.1 and the reason, durable usage shown by
 * `relay credential list` and `relay stats`; recipients of transactions still in progress count.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, runCli } from './helpers/cli.js';
import { RawSmtpClient } from './helpers/smtp-client.js';
import { testClock } from './helpers/clock.js';
import { addCredential, addSenderDomain, startTestRelay, type TestRelay } from './helpers/relay.js';

let relay: TestRelay;
/** The token bucket refills in this time, so the rate test advances it instead of waiting. */
const clock = testClock();
let creds: { username: string; password: string };

beforeAll(async () => {
  assertBuilt();
  relay = await startTestRelay({}, { clock: clock.now });
  await addSenderDomain(relay.storage, 'acme.test');
  creds = await addCredential(relay.storage, 'billing-app', ['acme.test']);
});

afterAll(async () => {
  await relay?.stop();
});

const cli = (...args: string[]) => runCli(['--config', relay.configFile, ...args], { cwd: relay.dir });

async function transaction() {
  const { client } = await RawSmtpClient.connect(relay.ports.smtps!, { implicitTls: true });
  await client.command('EHLO app.test');
  expect((await client.authPlain(creds.username, creds.password)).code).toBe(235);
  expect((await client.command('MAIL FROM:<billing@acme.test>')).code).toBe(250);
  return client;
}

const rcpt = async (client: RawSmtpClient, address: string) => {
  const reply = await client.command(`RCPT TO:<${address}>`);
  return `${reply.code} ${reply.text}`;
};

const tomorrow = () => {
  const now = new Date();
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1)).toISOString().replace('.000Z', 'Z');
};

describe('credential quotas', () => {
  it('enforces a daily quota per recipient at RCPT with 451 4.7.1 and the reset time; usage is durable and shown by the CLI', async () => {
    const set = await cli('credential', 'update', 'billing-app', '--daily', '3', '--rate', '1000/s');
    expect(set.stderr).toBe('');
    expect(set.code).toBe(0);

    let client = await transaction();
    expect(await rcpt(client, 'a@example.net')).toMatch(/^250 /);
    expect(await rcpt(client, 'b@example.net')).toMatch(/^250 /);
    expect((await client.data('From: billing@acme.test\r\n\r\nbody')).code).toBe(250);
    expect((await client.command('MAIL FROM:<billing@acme.test>')).code).toBe(250);
    expect(await rcpt(client, 'c@example.net')).toMatch(/^250 /);
    expect(await rcpt(client, 'd@example.net')).toBe(
      `451 4.7.1 credential billing-app is over its daily quota of 3 recipients; resets at ${tomorrow()}`,
    );
    expect((await client.data('From: billing@acme.test\r\n\r\nbody')).code).toBe(250);
    client.close();

    const list = await cli('credential', 'list', '--json');
    const [entry] = JSON.parse(list.stdout) as { name: string; limits: unknown; usage: unknown }[];
    expect(entry!.limits).toEqual({ rate: '1000/s', daily: 3, monthly: null });
    expect(entry!.usage).toEqual({ today: 3, this_month: 3 });
    expect((await cli('credential', 'list')).stdout).toMatch(/billing-app\s+billing-app\s+acme\.test\s+1000\/s\s+3\/3\s+3\s/);
    const stats = JSON.parse((await cli('stats', '--json')).stdout) as { credentials: Record<string, { usage: unknown }> };
    expect(stats.credentials['billing-app']!.usage).toEqual({ today: 3, this_month: 3 });

    client = await transaction();
    expect(await rcpt(client, 'e@example.net')).toMatch(/^451 4\.7\.1 /);
    client.close();
  });

  it('counts recipients reserved by transactions still in progress, and gives them back when the transaction is abandoned', async () => {
    expect((await cli('credential', 'update', 'billing-app', '--daily', '4')).code).toBe(0);
    const first = await transaction();
    const second = await transaction();
    expect(await rcpt(first, 'f@example.net')).toMatch(/^250 /);
    expect(await rcpt(second, 'g@example.net')).toMatch(/^451 4\.7\.1 .*daily quota of 4/);
    expect(await rcpt(first, 'f@example.net')).toMatch(/^250 /); // the same recipient again is not counted twice
    expect((await first.command('RSET')).code).toBe(250);
    expect((await first.command('MAIL FROM:<billing@acme.test>')).code).toBe(250);
    expect(await rcpt(second, 'g@example.net')).toMatch(/^250 /);
    first.close();
    second.close();
  });

  it('enforces the rate (token bucket) and the monthly quota; none clears a limit', async () => {
    expect((await cli('credential', 'update', 'billing-app', '--daily', 'none', '--rate', '2/s')).code).toBe(0);
    const client = await transaction();
    expect(await rcpt(client, 'h@example.net')).toMatch(/^250 /);
    expect(await rcpt(client, 'i@example.net')).toMatch(/^250 /);
    expect(await rcpt(client, 'j@example.net')).toBe(
      '451 4.7.1 credential billing-app is over its rate of 2 recipients per second; try again in a moment',
    );
    clock.advance(400);
    expect(await rcpt(client, 'j@example.net')).toMatch(/^451 4\.7\.1 /);
    clock.advance(200);
    expect(await rcpt(client, 'j@example.net')).toMatch(/^250 /);

    expect((await cli('credential', 'update', 'billing-app', '--rate', 'none', '--monthly', '3')).code).toBe(0);
    expect(await rcpt(client, 'k@example.net')).toMatch(
      /^451 4\.7\.1 credential billing-app is over its monthly quota of 3 recipients; resets at \d{4}-\d{2}-01T00:00:00Z$/,
    );
    client.close();
    expect(JSON.parse((await cli('credential', 'list', '--json')).stdout)[0].limits).toEqual({ rate: null, daily: null, monthly: 3 });
  });

  it('sets limits at credential add and refuses a bad rate with a usage error', async () => {
    const added = await cli(
      'credential',
      'add',
      'bulk-app',
      '--domain',
      'acme.test',
      '--rate',
      '20/s',
      '--daily',
      '50000',
      '--monthly',
      '1000000',
      '--json',
    );
    expect(JSON.parse(added.stdout).limits).toEqual({ rate: '20/s', daily: 50000, monthly: 1000000 });
    const bad = await cli('credential', 'update', 'bulk-app', '--rate', 'fast');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/not a rate/);
  });
});
