/**
 * The CLI side of feedback, as real processes on a real SQLite file: the return path's DNS
 * records from `relay domain add|records`, `credential add|update --[no-]list-unsubscribe`,
 * `suppression list --reason` telling bounces, complaints, unsubscribes and manual entries
 * apart, and `relay events` showing the async statuses.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSqlite } from '../src/queue/sqlite/index.js';
import { assertBuilt, runCli, type CliResult } from './helpers/cli.js';

let dir: string;
let configFile: string;

const relay = (...args: string[]) => runCli(['--config', configFile, ...args], { cwd: dir });

function json<T = any>(result: CliResult): T {
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  return JSON.parse(result.stdout) as T;
}

beforeAll(() => {
  assertBuilt();
  dir = mkdtempSync(path.join(tmpdir(), 'relay-cli-feedback-'));
  configFile = path.join(dir, 'relay.yaml');
  writeFileSync(
    configFile,
    ['hostname: relay.example.net', 'database: ./relay.db', 'bounces:', '  return_path_domain: bounces.acme.test', ''].join('\n'),
  );
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('relay CLI: feedback', () => {
  it('prints the MX and SPF records of the return-path domain with the sender domain records', async () => {
    const added = await relay('domain', 'add', 'acme.test');
    expect(added.code).toBe(0);
    expect(added.stdout).toMatch(/Return path bounces\.acme\.test/);
    expect(added.stdout).toMatch(/Type: {2}MX\n {4}Name: {2}bounces\.acme\.test\n {4}Value: 10 relay\.example\.net\./);
    const records = json(await relay('domain', 'records', 'acme.test', '--json'));
    expect(records.return_path).toEqual([
      { type: 'MX', name: 'bounces.acme.test', value: '10 relay.example.net.' },
      { type: 'TXT', name: 'bounces.acme.test', value: 'v=spf1 a:relay.example.net ~all' },
    ]);
  });

  it('turns one-click unsubscribe headers on and off per credential', async () => {
    expect(json(await relay('credential', 'add', 'news', '--domain', 'acme.test', '--list-unsubscribe', '--json')).list_unsubscribe).toBe(
      true,
    );
    expect(json(await relay('credential', 'update', 'news', '--no-list-unsubscribe', '--json')).list_unsubscribe).toBe(false);
    expect(json(await relay('credential', 'update', 'news', '--list-unsubscribe', '--json')).list_unsubscribe).toBe(true);
    const storage = await openSqlite(path.join(dir, 'relay.db'));
    try {
      expect(await storage.feedback.listUnsubscribe('news')).toBe(true);
    } finally {
      await storage.close();
    }
  });

  it('lists suppressions by reason, and events with their async phase', async () => {
    const storage = await openSqlite(path.join(dir, 'relay.db'));
    try {
      const event = { queueId: 'Q1', messageId: '<m@acme.test>', credential: 'news', smtpCode: null, category: null, response: 'x' };
      await storage.feedback.record(
        { ...event, recipient: 'c@example.org', status: 'complained' },
        { address: 'c@example.org', credential: 'news', reason: 'complaint: abuse' },
      );
      await storage.feedback.record(
        { ...event, recipient: 'u@example.org', status: 'unsubscribed' },
        { address: 'u@example.org', credential: 'news', reason: 'unsubscribe: one-click' },
      );
      await storage.suppressions.add({ address: 'b@example.org', credential: 'news', reason: '550 5.1.1 user unknown' });
      await storage.suppressions.add({ address: 'a@example.org', credential: 'news', reason: 'bounce: 554 delivery error' });
    } finally {
      await storage.close();
    }
    expect((await relay('suppression', 'add', 'm@example.org')).code).toBe(0);
    const addresses = async (...args: string[]) =>
      json<{ address: string }[]>(await relay('suppression', 'list', '--json', ...args))
        .map((s) => s.address)
        .sort();
    expect(await addresses('--reason', 'bounce')).toEqual(['a@example.org', 'b@example.org']);
    expect(await addresses('--reason', 'complaint')).toEqual(['c@example.org']);
    expect(await addresses('--reason', 'unsubscribe', '--credential', 'news')).toEqual(['u@example.org']);
    expect(await addresses('--reason', 'manual')).toEqual(['m@example.org']);
    const bad = await relay('suppression', 'list', '--reason', 'spam');
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/bounce, complaint, unsubscribe, manual/);

    const events = json<{ status: string; phase?: string }[]>(await relay('events', '--status', 'complained', '--json'));
    expect(events).toMatchObject([{ status: 'complained', phase: 'async' }]);
    expect((await relay('events', '--status', 'unsubscribed')).stdout).toMatch(/unsubscribed \(async\)\s+u@example\.org/);
  });
});
