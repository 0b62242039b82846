/** DKIM private keys and webhook secrets as stored, for src/secrets to seal and reseal. */
import type { SecretStore, StoredSecret } from '../storage.js';
import type { Db } from './db.js';

export class PgSecrets implements SecretStore {
  constructor(private readonly db: Db) {}

  async list(): Promise<StoredSecret[]> {
    return this.db.query<StoredSecret>(
      `SELECT 'dkim' AS kind, name AS id, private_key_pem AS value FROM domains
       UNION ALL SELECT 'dkim', domain || '/' || selector, private_key_pem FROM dkim_keys WHERE private_key_pem IS NOT NULL
       UNION ALL SELECT 'webhook', id::text, secret FROM webhooks ORDER BY 1, 2`,
    );
  }

  async replace(changes: (StoredSecret & { from: string })[]): Promise<number> {
    return this.db.transaction(async (client) => {
      let n = 0;
      for (const c of changes) {
        // A DKIM key's id is the domain (its row in domains) or domain/selector (its row in dkim_keys).
        const sql =
          c.kind === 'webhook'
            ? `UPDATE webhooks SET secret = $1 WHERE id = $2::bigint AND secret = $3`
            : c.id.includes('/')
              ? `UPDATE dkim_keys SET private_key_pem = $1 WHERE domain || '/' || selector = $2 AND private_key_pem = $3`
              : `UPDATE domains SET private_key_pem = $1 WHERE name = $2 AND private_key_pem = $3`;
        n += (await client.query(sql, [c.value, c.id, c.from])).rowCount ?? 0;
      }
      return n;
    }, 'on');
  }
}
