/**
 * The CLI against a PostgreSQL database, as an operator runs it beside several nodes: the same
 * commands and output as on SQLite, and what it changes seen by a running relay on that database.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, runCli, type CliResult } from './helpers/cli.js';
import { createTestDatabase, type TestDatabase } from './helpers/postgres.js';
import { startTestRelay, type TestRelay } from './helpers/relay.js';
import { RawSmtpClient } from './helpers/smtp-client.js';

let db: TestDatabase;
let dir: string;
let configFile: string;
let relay: TestRelay;

const cli = (...args: string[]) => runCli(['--config', configFile, ...args], { cwd: dir });

function json<T>(result: CliResult): T {
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  return JSON.parse(result.stdout) as T;
}

beforeAll(async () => {
  assertBuilt();
  db = await createTestDatabase();
  dir = mkdtempSync(path.join(tmpdir(), 'relay-cli-pg-'));
  configFile = path.join(dir, 'relay.yaml');
  writeFileSync(
    configFile,
    YAML.stringify({ hostname: 'relay.test', database: db.url, node_name: 'cli-test-node', log: { level: 'silent' } }),
  );
  relay = await startTestRelay({ database: db.url, node_name: 'running-node' });
});

afterAll(async () => {
  await relay?.stop();
  await db?.drop();
});

describe('the CLI on PostgreSQL', () => {
  it('adds a domain and a credential that a running node on the database uses at once', async () => {
    const domain = json<{ domain: string; records: unknown[] }>(await cli('domain', 'add', 'acme.test', '--json'));
    expect(domain.domain).toBe('acme.test');
    const created = json<{ name: string; password: string }>(
      await cli('credential', 'add', 'billing-app', '--domain', 'acme.test', '--daily', '100', '--json'),
    );
    const listed = json<{ name: string; limits: { daily: number } }[]>(await cli('credential', 'list', '--json'));
    expect(listed).toMatchObject([{ name: 'billing-app', limits: { daily: 100 } }]);

    const { client } = await RawSmtpClient.connect(relay.ports.smtps!, { implicitTls: true });
    try {
      await client.command('EHLO app.test');
      expect((await client.authPlain('billing-app', created.password)).code).toBe(235);
    } finally {
      client.close();
    }
  });

  it('manages suppressions and lists the queue, events, stats and nodes', async () => {
    expect((await cli('suppression', 'add', 'gone@example.org', '--reason', 'asked')).code).toBe(0);
    expect(json<{ address: string; credential: null }[]>(await cli('suppression', 'list', '--json'))).toMatchObject([
      { address: 'gone@example.org', credential: null },
    ]);
    expect(await relay.storage.suppressions.isSuppressed('gone@example.org', 'billing-app')).toBe(true);
    expect(json<unknown[]>(await cli('queue', 'list', '--json'))).toEqual([]);
    expect(json<unknown[]>(await cli('events', '--json'))).toEqual([]);
    expect(json<{ queue: { messages: number } }>(await cli('stats', '--json')).queue.messages).toBe(0);
    const nodes = json<{ name: string; alive: boolean }[]>(await cli('nodes', '--json'));
    expect(nodes).toMatchObject([{ name: 'running-node', alive: true }]);
  });
});
