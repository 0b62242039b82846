/** DKIM private keys and webhook secrets as stored, for src/secrets to seal and reseal. */
import type { SecretStore, StoredSecret } from '../storage.js';
import type { Db } from './db.js';

export class PgSecrets implements SecretStore {
  constructor(private readonly db: Db) {}

  async list(): Promise<StoredSecret[]> {
    return this.db.query<StoredSecret>(
      `SELECT 'dkim' AS kind, name AS id, private_key_pem AS value FROM domains
       UNION ALL SELECT 'webhook', id::text, secret FROM webhooks ORDER BY 1, 2`,
    );
  }

  async replace(changes: (StoredSecret & { from: string })[]): Promise<number> {
    return this.db.transaction(async (client) => {
      let n = 0;
      for (const c of changes) {
        const sql =
          c.kind === 'dkim'
            ? `UPDATE domains SET private_key_pem = $1 WHERE name = $2 AND private_key_pem = $3`
            : `UPDATE webhooks SET secret = $1 WHERE id = $2::bigint AND secret = $3`;
        n += (await client.query(sql, [c.value, c.id, c.from])).rowCount ?? 0;
      }
      return n;
    }, 'on');
  }
}
