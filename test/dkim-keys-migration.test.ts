/**
 * Upgrading to the DKIM keys table: each existing domain's single key becomes its first, active
 * key, in both backends, and goes on signing.
 */
import { copyFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { MIGRATIONS } from '../src/queue/postgres/migrations.js';
import { openPostgres } from '../src/queue/postgres/index.js';
import { openSqlite } from '../src/queue/sqlite/index.js';
import { DkimSigner, generateDkimKey } from '../src/signing/dkim.js';
import { createTestDatabase } from './helpers/postgres.js';

const FIXTURE = path.join(import.meta.dirname, 'fixtures', 'release-0.1.0.db');
const KEYS_MIGRATION = MIGRATIONS.find((m) => m.name === 'dkim keys')!;

describe('existing domains keep their DKIM key as their first active key', () => {
  it('sqlite: a release 0.1.0 database', async () => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'relay-migrate-')), 'relay.db');
    copyFileSync(FIXTURE, file);
    const storage = await openSqlite(file);
    try {
      const domain = (await storage.domains.get('acme.test'))!;
      const keys = await storage.dkimKeys.list('acme.test');
      expect(keys).toEqual([
        {
          domain: 'acme.test',
          selector: 'relay',
          algorithm: 'ed25519',
          privateKeyPem: domain.privateKeyPem,
          publicKey: domain.publicKey,
          state: 'active',
          autoActivate: false,
          createdAt: domain.createdAt,
          publishedAt: null,
          activatedAt: domain.createdAt,
          retireAt: null,
        },
      ]);
      const signed = new DkimSigner().sign(Buffer.from('From: a@acme.test\r\n\r\nhi\r\n'), {
        ...keys[0]!,
        privateKeyPem: keys[0]!.privateKeyPem!,
      });
      expect(signed.toString()).toMatch(/^DKIM-Signature: .*a=ed25519-sha256/s);
    } finally {
      await storage.close();
    }
  });

  it('postgres: a database migrated up to the version before', async () => {
    const db = await createTestDatabase();
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      await client.query(`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`);
      for (const migration of MIGRATIONS.filter((m) => m.version < KEYS_MIGRATION.version)) {
        await client.query(migration.sql);
        await client.query(`INSERT INTO schema_migrations VALUES ($1, $2, 0)`, [migration.version, migration.name]);
      }
      const { privateKeyPem, publicKey } = generateDkimKey('rsa');
      await client.query(
        `INSERT INTO domains (name, selector, algorithm, private_key_pem, public_key, verification_token, verified_at, created_at)
         VALUES ('acme.test', 'relay202601', 'rsa', $1, $2, 'tok', 2000, 1000)`,
        [privateKeyPem, publicKey],
      );

      const storage = await openPostgres(db.url, { poolSize: 2 });
      try {
        expect(await storage.dkimKeys.list('acme.test')).toEqual([
          {
            domain: 'acme.test',
            selector: 'relay202601',
            algorithm: 'rsa',
            privateKeyPem,
            publicKey,
            state: 'active',
            autoActivate: false,
            createdAt: 1000,
            publishedAt: null,
            activatedAt: 1000,
            retireAt: null,
          },
        ]);
      } finally {
        await storage.close();
      }
    } finally {
      await client.end();
      await db.drop();
    }
  });
});
