/**
 * The audit trail: management actions through the CLI (real processes) and the HTTP API of a
 * running relay land in one hash chain with their actors; `relay audit verify` passes on it,
 * and names the row once one is edited or deleted in the database directly. Two writers on one
 * database (two SQLite connections, two PostgreSQL nodes) never fork the chain.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyChain } from '../src/audit/chain.js';
import { AuditTrail } from '../src/audit/trail.js';
import { loadConfig } from '../src/config/load.js';
import { openPostgres } from '../src/queue/postgres/index.js';
import { openSqlite } from '../src/queue/sqlite/index.js';
import { assertBuilt, runCli } from './helpers/cli.js';
import { startDnsServer, type TestDnsServer } from './helpers/dns.js';
import { apiClient } from './helpers/http.js';
import { createTestDatabase } from './helpers/postgres.js';
import { startTestRelay, type TestRelay } from './helpers/relay.js';

const ADMIN_TOKEN = 'admin-token-0123456789abcdef';
let relay: TestRelay;
let dns: TestDnsServer;
const cli = (...args: string[]) => runCli(['--config', relay.configFile, ...args], { cwd: relay.dir });
const ok = async (...args: string[]) => {
  const result = await cli(...args);
  expect(result.code, `relay ${args.join(' ')}: ${result.stderr}`).toBe(0);
  return result;
};

beforeAll(async () => {
  assertBuilt();
  dns = await startDnsServer();
  relay = await startTestRelay({ http: { admin_token: ADMIN_TOKEN }, delivery: { dns_servers: [dns.address] } });
});

afterAll(async () => {
  await relay?.stop();
  await dns?.stop();
});

interface Listed {
  seq: number;
  actor: string;
  action: string;
  target: string;
  change: Record<string, unknown>;
}

// About forty CLI processes: minutes on a loaded machine.
describe('audit trail through the CLI and the HTTP API', { timeout: 300_000 }, () => {
  it('records every action with its actor in one chain that verifies, and finds an edited and a deleted row', async () => {
    const me = `cli:${userInfo().username}`;
    const admin = apiClient(relay.ports.http!, ADMIN_TOKEN);

    await ok('domain', 'add', 'acme.test');
    expect((await cli('domain', 'verify', 'acme.test')).code).toBe(1); // nothing published: recorded all the same
    const created = JSON.parse((await ok('credential', 'add', 'app', '--domain', 'acme.test', '--api-key', '--json')).stdout) as {
      password: string;
      api_key: string;
    };
    expect((await admin('POST', '/v1/suppressions', { address: 'gone@example.org', reason: 'asked' })).status).toBe(201);
    await ok('credential', 'update', 'app', '--daily', '500');
    expect((await apiClient(relay.ports.http!, created.api_key)('POST', '/v1/suppressions', { address: 'x@example.org' })).status).toBe(
      201,
    );
    await ok('suppression', 'add', 'other@example.org');
    expect((await admin('DELETE', '/v1/suppressions/gone@example.org')).status).toBe(204);
    await ok('suppression', 'remove', 'other@example.org');
    const rotated = JSON.parse((await ok('credential', 'rotate', 'app', '--grace', '1h', '--json')).stdout) as { password: string };
    await ok('webhook', 'add', 'https://user:pw@hooks.example/relay');
    await ok('webhook', 'remove', '1');
    expect((await admin('POST', '/v1/webhooks', { url: 'https://user:apipw@hooks.example/api', events: ['bounced'] })).status).toBe(201);
    await ok('template', 'add', 'welcome', '--subject', 'Hi {{name}}', '--text-file', relay.configFile);
    await relay.reload(loadConfig(relay.configFile));
    await ok('credential', 'revoke', 'app');
    await ok('domain', 'remove', 'acme.test');

    const listed = JSON.parse((await ok('audit', '--json')).stdout) as Listed[];
    expect(listed.map((e) => [e.actor, e.action, e.target])).toEqual([
      [me, 'domain.add', 'acme.test'],
      [me, 'domain.verify', 'acme.test'],
      [me, 'credential.add', 'app'],
      ['admin-token', 'suppression.add', 'gone@example.org'],
      [me, 'credential.update', 'app'],
      ['credential:app', 'suppression.add', 'x@example.org'],
      [me, 'suppression.add', 'other@example.org'],
      ['admin-token', 'suppression.remove', 'gone@example.org'],
      [me, 'suppression.remove', 'other@example.org'],
      [me, 'credential.rotate', 'app'],
      [me, 'webhook.add', '1'],
      [me, 'webhook.remove', '1'],
      ['admin-token', 'webhook.add', 'https://user:***@hooks.example/api'],
      [me, 'template.add', 'welcome'],
      ['signal:SIGHUP', 'config.reload', relay.configFile],
      [me, 'credential.revoke', 'app'],
      [me, 'domain.remove', 'acme.test'],
    ]);
    expect(listed[2]!.change).toEqual({ api_key: true, domains: ['acme.test'], limits: {} });
    expect(listed[4]!.change).toMatchObject({ limits: { from: { daily: null }, to: { daily: 500 } } });
    expect(listed[10]!.change).toEqual({ events: expect.any(Array), url: 'https://user:***@hooks.example/relay' });
    // No secret reaches the log: not the password, the new one, the key, nor the webhook's.
    const raw = JSON.stringify(await relay.storage.audit.list({ limit: 100 }));
    for (const secret of [created.password, created.api_key, rotated.password, (await relay.storage.webhooks.list())[0]?.secret ?? 'pw@']) {
      expect(raw).not.toContain(secret);
    }
    expect(raw).not.toContain(':pw@');
    expect(raw).not.toContain('apipw');

    expect((JSON.parse((await ok('audit', '--actor', 'admin-token', '--json')).stdout) as Listed[]).map((e) => e.target)).toEqual([
      'gone@example.org',
      'gone@example.org',
      'https://user:***@hooks.example/api',
    ]);
    expect(JSON.parse((await ok('audit', '--since', '1h', '--json')).stdout)).toHaveLength(17);
    expect(JSON.parse((await ok('audit', '--since', '2999-01-01T00:00:00Z', '--json')).stdout)).toHaveLength(0);
    expect((await ok('audit')).stdout).toMatch(/credential\.rotate\s+app\s+\{"api_key":false,"grace_until":"/);

    const api = await admin('GET', '/v1/audit?limit=10');
    expect(api.status).toBe(200);
    expect(api.body.entries).toEqual(listed.slice(0, 10));
    expect(api.body.next_after).toBe(10);
    expect((await admin('GET', `/v1/audit?after=10&actor=${encodeURIComponent('signal:SIGHUP')}`)).body.entries).toHaveLength(1);
    expect((await apiClient(relay.ports.http!, created.api_key)('GET', '/v1/audit')).status).toBe(401); // revoked by now
    expect((await apiClient(relay.ports.http!)('GET', '/v1/audit')).status).toBe(401);

    const verified = await ok('audit', 'verify');
    expect(verified.stdout).toMatch(/intact: 17 rows, head hash [0-9a-f]{64}/);

    // Edited in the database directly: the row is named, exit 1.
    const db = new Database(relay.config.database);
    try {
      const original = db.prepare(`SELECT target FROM audit_log WHERE seq = 5`).pluck().get() as string;
      db.prepare(`UPDATE audit_log SET target = 'someone-else' WHERE seq = 5`).run();
      const edited = await cli('audit', 'verify');
      expect(edited.code).toBe(1);
      expect(edited.stderr).toMatch(/broken at row 5: row 5 was edited/);
      expect(JSON.parse((await cli('audit', 'verify', '--json')).stdout)).toMatchObject({ ok: false, seq: 5, problem: 'edited' });
      db.prepare(`UPDATE audit_log SET target = ? WHERE seq = 5`).run(original);
      await ok('audit', 'verify');

      db.prepare(`DELETE FROM audit_log WHERE seq = 7`).run();
      const deleted = await cli('audit', 'verify');
      expect(deleted.code).toBe(1);
      expect(deleted.stderr).toMatch(/broken at row 7: row 7 is missing/);

      // Deleted and the rest renumbered to hide the gap: the next row no longer chains.
      db.prepare(`UPDATE audit_log SET seq = seq - 1 WHERE seq > 7`).run();
      const renumbered = await cli('audit', 'verify');
      expect(renumbered.code).toBe(1);
      expect(renumbered.stderr).toMatch(/broken at row 7: row 7 is not chained to row 6/);
    } finally {
      db.close();
    }
  });
});

describe('two writers on one database keep one chain', { timeout: 60_000 }, () => {
  it('two SQLite connections (the CLI beside relay serve)', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'relay-audit-'));
    const file = path.join(dir, 'relay.db');
    const [a, b] = [await openSqlite(file), await openSqlite(file)];
    try {
      const [ta, tb] = [new AuditTrail(a.audit), new AuditTrail(b.audit)];
      await Promise.all(
        Array.from({ length: 40 }, (_, i) => (i % 2 ? ta : tb).record({ actor: `w${i % 2}`, action: 'test.append', target: String(i) })),
      );
      expect(await verifyChain(a.audit)).toMatchObject({ ok: true, rows: 40 });
    } finally {
      await Promise.all([a.close(), b.close()]);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('two PostgreSQL nodes, and an edited and a deleted row found there too', async () => {
    const database = await createTestDatabase();
    const [a, b] = [await openPostgres(database.url, { poolSize: 4 }), await openPostgres(database.url, { poolSize: 4 })];
    const admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
    try {
      const [ta, tb] = [new AuditTrail(a.audit), new AuditTrail(b.audit)];
      await Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          (i % 2 ? ta : tb).record({ actor: `node-${i % 2}`, action: 'test.append', target: String(i), change: { i } }),
        ),
      );
      expect(await verifyChain(b.audit)).toMatchObject({ ok: true, rows: 40 });

      await admin.query(`UPDATE audit_log SET change = '{"i":999}' WHERE seq = 12`);
      expect(await verifyChain(a.audit)).toMatchObject({ ok: false, seq: 12, problem: 'edited' });
      await admin.query(`DELETE FROM audit_log WHERE seq = 12`);
      expect(await verifyChain(a.audit)).toMatchObject({ ok: false, seq: 12, problem: 'missing' });
    } finally {
      await admin.end();
      await Promise.all([a.close(), b.close()]);
      await database.drop();
    }
  });
});
