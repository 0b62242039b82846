/** DKIM private keys and webhook secrets as stored, for src/secrets to seal and reseal. */
import type { SecretStore, StoredSecret } from '../storage.js';
import type { SqliteConnection } from './connection.js';

export class SqliteSecrets implements SecretStore {
  constructor(private readonly conn: SqliteConnection) {}

  async list(): Promise<StoredSecret[]> {
    return this.conn.db
      .prepare(
        `SELECT 'dkim' AS kind, name AS id, private_key_pem AS value FROM domains
         UNION ALL SELECT 'dkim', domain || '/' || selector, private_key_pem FROM dkim_keys WHERE private_key_pem IS NOT NULL
         UNION ALL SELECT 'webhook', CAST(id AS TEXT), secret FROM webhooks ORDER BY 1, 2`,
      )
      .all() as StoredSecret[];
  }

  async replace(changes: (StoredSecret & { from: string })[]): Promise<number> {
    const db = this.conn.db;
    const dkim = db.prepare(`UPDATE domains SET private_key_pem = ? WHERE name = ? AND private_key_pem = ?`);
    const key = db.prepare(`UPDATE dkim_keys SET private_key_pem = ? WHERE domain || '/' || selector = ? AND private_key_pem = ?`);
    const webhook = db.prepare(`UPDATE webhooks SET secret = ? WHERE id = ? AND secret = ?`);
    // A DKIM key's id is the domain (its row in domains) or domain/selector (its row in dkim_keys).
    const statement = (c: StoredSecret) => (c.kind === 'webhook' ? webhook : c.id.includes('/') ? key : dkim);
    return this.conn.durableWrite(() =>
      changes.reduce((n, c) => n + statement(c).run(c.value, c.kind === 'dkim' ? c.id : Number(c.id), c.from).changes, 0),
    );
  }
}
