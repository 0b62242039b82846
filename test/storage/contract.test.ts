/**
 * The storage contract (contract.ts) against each backend, and what only PostgreSQL promises:
 * several nodes on one database.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openPostgres, type PostgresStorage } from '../../src/queue/postgres/index.js';
import { openSqlite } from '../../src/queue/sqlite/index.js';
import { NodeNameInUseError, StorageFullError } from '../../src/queue/storage.js';
import { storageError } from '../../src/queue/postgres/db.js';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';
import { governanceContract } from './contract-governance.js';
import { operatorContract } from './contract-operators.js';
import { governanceContract as auditContract } from './contract-audit.js';
import { newMessage, storageContract, T0, type OpenedStorage } from './contract.js';
import { dkimKeysContract } from './contract-dkim-keys.js';
import { tlsPolicyContract } from './contract-tls.js';
import { feedbackContract } from './contract-feedback.js';

const openSqliteStorage = async (): Promise<OpenedStorage> => {
  const dir = mkdtempSync(path.join(tmpdir(), 'relay-storage-'));
  return {
    storage: await openSqlite(path.join(dir, 'relay.db')),
    cleanup: async () => rmSync(dir, { recursive: true, force: true }),
  };
};
storageContract('sqlite', openSqliteStorage);
governanceContract('sqlite', openSqliteStorage);
operatorContract('sqlite', openSqliteStorage);
auditContract('sqlite', openSqliteStorage);
dkimKeysContract('sqlite', openSqliteStorage);
tlsPolicyContract('sqlite', openSqliteStorage);
feedbackContract('sqlite', openSqliteStorage);

// ---- PostgreSQL: one database for this file, emptied after each test ---------------------------

let database: Promise<{ db: TestDatabase; admin: pg.Client }> | undefined;
let schemas = 0;

/** The file's database, and a connection to it for resetting between tests. */
function testDatabase(): Promise<{ db: TestDatabase; admin: pg.Client }> {
  database ??= createTestDatabase().then(async (db) => {
    const admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    return { db, admin };
  });
  return database;
}

afterAll(async () => {
  if (!database) return;
  const { db, admin } = await database;
  await admin.end();
  await db.drop();
});

/**
 * Empties every table the backend created and starts its ids over: the state of a new database,
 * without creating and migrating one for each test. DELETE, not TRUNCATE: on small tables it
 * costs milliseconds where TRUNCATE's new files cost hundreds.
 */
async function emptyTables(): Promise<void> {
  const { admin } = await testDatabase();
  const { rows } = await admin.query<{ statement: string }>(
    `SELECT format('DELETE FROM %I', tablename) AS statement FROM pg_tables
       WHERE schemaname = 'public' AND tablename <> 'schema_migrations'
     UNION ALL
     SELECT format('SELECT setval(%L, 1, false)', sequencename) FROM pg_sequences WHERE schemaname = 'public'`,
  );
  await admin.query(rows.map((r) => r.statement).join('; '));
}

/** A new schema, for what must start from nothing (the migrations themselves). */
async function freshSchema(): Promise<{ name: string; url: string; drop(): Promise<void> }> {
  const { db, admin } = await testDatabase();
  const schema = `fresh_${++schemas}`;
  await admin.query(`CREATE SCHEMA ${schema}`);
  const url = new URL(db.url);
  url.searchParams.set('options', `-c search_path=${schema}`);
  return { name: schema, url: url.toString(), drop: async () => void (await admin.query(`DROP SCHEMA ${schema} CASCADE`)) };
}

const openPgStorage = async (): Promise<OpenedStorage> => {
  const { db } = await testDatabase();
  return { storage: await openPostgres(db.url, { poolSize: 4 }), cleanup: emptyTables };
};
storageContract('postgres', openPgStorage);
governanceContract('postgres', openPgStorage);
operatorContract('postgres', openPgStorage);
auditContract('postgres', openPgStorage);
dkimKeysContract('postgres', openPgStorage);
tlsPolicyContract('postgres', openPgStorage);
feedbackContract('postgres', openPgStorage);

describe('postgres: several nodes on one database', () => {
  let nodes: PostgresStorage[];
  const open = async (url?: string) => {
    const storage = await openPostgres(url ?? (await testDatabase()).db.url, { poolSize: 4 });
    nodes.push(storage);
    return storage;
  };

  beforeEach(() => {
    nodes = [];
  });

  afterEach(async () => {
    await Promise.all(nodes.map((n) => n.close()));
    await emptyTables();
  });

  it('nodes opening a new database together apply each migration once', async () => {
    const schema = await freshSchema();
    try {
      await Promise.all([open(schema.url), open(schema.url), open(schema.url)]);
      const { admin } = await testDatabase();
      const { rows } = await admin.query<{ version: number; n: number }>(
        `SELECT version, count(*)::int AS n FROM ${schema.name}.schema_migrations GROUP BY version`,
      );
      expect(rows.length).toBeGreaterThan(0);
      expect(rows.every((r) => r.n === 1)).toBe(true);
    } finally {
      await Promise.all(nodes.splice(0).map((n) => n.close()));
      await schema.drop();
    }
  });

  it('two nodes claiming at once never get the same recipient', async () => {
    const [a, b] = [await open(), await open()];
    const messages = Array.from({ length: 150 }, (_, i) =>
      newMessage({ recipients: [`r${i}@one.test`, `s${i}@one.test`, `t${i}@two.test`], receivedAt: T0 + (i % 7) }),
    );
    await Promise.all(messages.map((m, i) => (i % 2 ? a : b).queue.enqueue(m)));

    // Four claimers on two nodes until each finds nothing twice running.
    const claimed = new Map<number, string>();
    const claimAll = async (storage: PostgresStorage, owner: string) => {
      for (let idle = 0; idle < 2;) {
        const jobs = await storage.queue.claimDue(T0 + 10, 7, { owner, ms: 60_000 });
        idle = jobs.length === 0 ? idle + 1 : 0;
        for (const r of jobs.flatMap((j) => j.recipients)) {
          expect(claimed.get(r.id), `recipient ${r.id} claimed twice`).toBeUndefined();
          claimed.set(r.id, owner);
        }
      }
    };
    await Promise.all([claimAll(a, 'node-a'), claimAll(b, 'node-b'), claimAll(a, 'node-a2'), claimAll(b, 'node-b2')]);
    expect(claimed.size).toBe(450);
    const { admin } = await testDatabase();
    const { rows } = await admin.query<{ id: number; lease_owner: string }>(`SELECT id, lease_owner FROM recipients`);
    expect(new Map(rows.map((r) => [Number(r.id), r.lease_owner]))).toEqual(claimed);
  });

  it('a quota holds across nodes submitting at once', async () => {
    const [a, b] = [await open(), await open()];
    const results = await Promise.all(
      Array.from({ length: 30 }, (_, i) => (i % 2 ? a : b).queue.enqueue(newMessage({ quota: { daily: 7, monthly: 9 } }))),
    );
    expect(results.filter((r) => r.status === 'queued')).toHaveLength(7);
    expect(await a.limits.usage('app', T0)).toEqual({ day: 7, month: 7 });
  });

  it('one idempotency key submitted on two nodes at once is queued once', async () => {
    const [a, b] = [await open(), await open()];
    const messages = Array.from({ length: 10 }, () => newMessage({ idempotencyKeys: ['key:twice'], idempotencySince: T0 - 1 }));
    const results = await Promise.all(messages.map((m, i) => (i % 2 ? a : b).queue.enqueue(m)));
    const queued = messages.filter((_, i) => results[i]!.status === 'queued');
    expect(queued).toHaveLength(1);
    expect(results.filter((r) => r.status === 'duplicate')).toEqual(Array(9).fill({ status: 'duplicate', queueId: queued[0]!.queueId }));
  });

  it('two nodes finishing the last recipients of a message at once drop its body', async () => {
    const [a, b] = [await open(), await open()];
    const messages = Array.from({ length: 20 }, () => newMessage({ recipients: ['x@one.test', 'y@two.test'] }));
    await Promise.all(messages.map((m) => a.queue.enqueue(m)));
    const jobs = await a.queue.claimDue(T0, 100, { owner: 'node-a', ms: 60_000 });
    expect(jobs).toHaveLength(40);
    await Promise.all(
      jobs.map((job) =>
        (job.domain === 'one.test' ? a : b).queue.recordAttempt({
          job,
          outcomes: [{ recipientId: job.recipients[0]!.id, status: 'delivered', smtpCode: 250 }],
          suppressions: [],
        }),
      ),
    );
    for (const m of messages) expect(await a.queue.body(m.queueId)).toBeUndefined();
  });

  it('a failed batch fails every submission in it', async () => {
    const a = await open();
    const first = newMessage();
    // Submitted in one tick: one transaction, broken by the second use of one queue id.
    const results = await Promise.allSettled([
      a.queue.enqueue(first),
      a.queue.enqueue(newMessage()),
      a.queue.enqueue({ ...newMessage(), queueId: first.queueId }),
    ]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected']);
    expect(await a.queue.pending()).toEqual([]);
    expect(await a.limits.usage('app', T0)).toEqual({ day: 0, month: 0 });
    // The next batch is unaffected.
    expect(await a.queue.enqueue(newMessage())).toEqual({ status: 'queued' });
  });

  it('a node name is held while its process is connected, and freed when it goes away', async () => {
    const [a, b] = [await open(), await open()];
    await a.nodes.register({ name: 'mx1', host: 'host-a', pid: 1111, at: T0 });
    const refused = b.nodes.register({ name: 'mx1', host: 'host-b', pid: 2222, at: T0 });
    await expect(refused).rejects.toBeInstanceOf(NodeNameInUseError);
    await expect(refused).rejects.toThrow('node name mx1 is in use by a running relay (host-a, pid 1111)');
    // A crash (the connection goes without unregistering) lets the name go; the row stays until taken over.
    await a.close();
    nodes = nodes.filter((n) => n !== a);
    expect((await b.nodes.list(T0)).map((n) => n.host)).toEqual(['host-a']);
    await b.nodes.register({ name: 'mx1', host: hostname(), pid: process.pid, at: T0 + 1 });
    expect((await b.nodes.list(T0)).map((n) => [n.name, n.pid])).toEqual([['mx1', process.pid]]);
  });

  it('onWork tells every node when mail is queued', async () => {
    const [a, b] = [await open(), await open()];
    let wakeUps = 0;
    let next: () => void = () => undefined;
    const woken = () => new Promise<void>((resolve) => (next = resolve));
    const live = woken();
    b.onWork(() => {
      wakeUps++;
      next();
    });
    await live; // the subscription is live
    const notified = woken();
    await a.queue.enqueue(newMessage());
    await notified;
    expect(wakeUps).toBe(2);
  });

  it('checkWritable rejects when the database takes no writes', async () => {
    await open(); // migrated
    const url = new URL((await testDatabase()).db.url);
    url.searchParams.set('options', '-c default_transaction_read_only=on');
    const readOnly = await open(url.toString());
    await expect(readOnly.checkWritable()).rejects.toThrow(/read-only transaction/);
  });

  it('a full disk is told apart from other failures', () => {
    expect(storageError(Object.assign(new Error('could not extend file'), { code: '53100' }))).toBeInstanceOf(StorageFullError);
    const other = Object.assign(new Error('deadlock detected'), { code: '40P01' });
    expect(storageError(other)).toBe(other);
  });
});
