/**
 * A database written by release 0.1.0 (test/fixtures/release-0.1.0.db, made by that release's
 * code) opens in place: every row is still there in the new schema, the pending mail is still
 * due, and opening it again (or from two processes at once) changes nothing.
 */
import { copyFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { SCHEMA_VERSION } from '../src/queue/sqlite/migrations.js';
import { openSqlite } from '../src/queue/sqlite/index.js';
import { storedBody } from './helpers/relay.js';

const FIXTURE = path.join(import.meta.dirname, 'fixtures', 'release-0.1.0.db');

function copyOfRelease(): string {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'relay-migrate-')), 'relay.db');
  copyFileSync(FIXTURE, file);
  return file;
}

const versionOf = (file: string) => {
  const db = new Database(file, { readonly: true });
  try {
    return db.pragma('user_version', { simple: true });
  } finally {
    db.close();
  }
};

describe('upgrading a release 0.1.0 database in place', () => {
  it('keeps every row and brings the schema to the current version', async () => {
    const file = copyOfRelease();
    expect(versionOf(file)).toBe(0);
    const storage = await openSqlite(file);
    try {
      expect(versionOf(file)).toBe(SCHEMA_VERSION);

      const domain = await storage.domains.get('acme.test');
      expect(domain).toMatchObject({
        name: 'acme.test',
        selector: 'relay',
        algorithm: 'ed25519',
        verified: true,
        verificationToken: 'tok123',
      });
      const credential = await storage.credentials.byUsername('billing-app');
      expect(credential).toMatchObject({ name: 'billing-app', domains: ['acme.test'], revokedAt: null });
      expect(await storage.credentials.byApiKey('a'.repeat(64))).toMatchObject({ name: 'billing-app' });
      expect(await storage.limits.get('billing-app')).toEqual({ rate: { count: 20, perSeconds: 1 }, daily: 1000, monthly: null });
      expect(await storage.templates.get('welcome')).toMatchObject({ version: 1, subject: 'Hi {{name}}' });
      expect((await storage.webhooks.list()).map((w) => w.url)).toEqual(['https://hooks.example.test/relay']);

      // A suppression of that release applied to everyone: it stays global.
      expect(await storage.suppressions.list()).toMatchObject([{ address: 'gone@example.org', credential: null, reason: 'manual' }]);
      expect(await storage.suppressions.isSuppressed('GONE@example.org', 'any-credential')).toBe(true);

      // Events gain the credential of their message.
      const events = await storage.events.query({ limit: 100 });
      expect(events).toHaveLength(6);
      expect(new Set(events.map((e) => e.credential))).toEqual(new Set(['billing-app']));
      expect(await storage.events.query({ credential: 'billing-app', status: 'delivered', limit: 10 })).toHaveLength(1);

      // The webhook outbox row of the delivered event survives, now pointing at its event.
      const outbox = await storage.webhooks.claimDue(Date.now(), 10, { owner: 'test', ms: 60_000 });
      expect(outbox.map((o) => [o.event.status, o.event.recipient])).toEqual([['delivered', 'c@example.org']]);

      // The idempotency key still answers with the original queue id.
      expect(await storage.idempotency.find('billing-app', 'key:order-1', 0)).toBe('Q1PENDING');

      // The deferred recipients are still due, and the delivered message kept no body.
      const pending = await storage.queue.pending();
      expect(pending.map((m) => m.queueId)).toEqual(['Q1PENDING']);
      expect(pending[0]!.recipients.map((r) => [r.address, r.status, r.attempts])).toEqual([
        ['a@example.org', 'deferred', 1],
        ['b@example.net', 'deferred', 1],
      ]);
      expect(await storage.queue.body('Q2DONE')).toBeUndefined();
      const jobs = await storage.queue.claimDue(Date.now(), 10, { owner: 'node-a', ms: 60_000 });
      expect(jobs.map((j) => [j.queueId, j.domain, j.credential]).sort()).toEqual([
        ['Q1PENDING', 'example.net', 'billing-app'],
        ['Q1PENDING', 'example.org', 'billing-app'],
      ]);
      expect((await storedBody(storage.queue, 'Q1PENDING'))?.toString()).toContain('Subject: pending');
      expect(await storage.limits.usage('billing-app', Date.UTC(2026, 10, 1, 12))).toEqual({ day: 3, month: 3 });
    } finally {
      await storage.close();
    }
  });

  it('runs each migration once when several processes open the file together', async () => {
    const file = copyOfRelease();
    const opened = await Promise.all([openSqlite(file), openSqlite(file), openSqlite(file)]);
    for (const storage of opened) await storage.close();
    expect(versionOf(file)).toBe(SCHEMA_VERSION);
    const again = await openSqlite(file);
    try {
      expect(await again.suppressions.list()).toHaveLength(1);
      expect(await again.events.query({ limit: 100 })).toHaveLength(6);
    } finally {
      await again.close();
    }
  });

  it('refuses a database from a newer release instead of guessing', async () => {
    const file = copyOfRelease();
    const db = new Database(file);
    db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    db.close();
    await expect(openSqlite(file)).rejects.toThrow(/newer than this release knows/);
  });
});
