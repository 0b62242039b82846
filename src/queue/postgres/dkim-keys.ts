/** The DKIM keys of sender domains. Private keys are read and written only here (and copied, as stored, to the domain row). */
import type { DkimKeyRecord, DkimKeyStore, NewDkimKey } from '../storage.js';
import type { Db, Sql } from './db.js';

interface DkimKeyRow {
  domain: string;
  selector: string;
  algorithm: 'rsa' | 'ed25519';
  private_key_pem: string | null;
  public_key: string;
  state: DkimKeyRecord['state'];
  auto_activate: boolean;
  created_at: number;
  published_at: number | null;
  activated_at: number | null;
  retire_at: number | null;
}

const toDkimKey = (r: DkimKeyRow): DkimKeyRecord => ({
  domain: r.domain,
  selector: r.selector,
  algorithm: r.algorithm,
  privateKeyPem: r.private_key_pem,
  publicKey: r.public_key,
  state: r.state,
  autoActivate: r.auto_activate,
  createdAt: r.created_at,
  publishedAt: r.published_at,
  activatedAt: r.activated_at,
  retireAt: r.retire_at,
});

/** The signing key the domain row shows: RSA first, as receivers that know only RSA expect. */
const PRIMARY_ORDER = `ORDER BY algorithm = 'rsa' DESC, selector`;

export class PgDkimKeys implements DkimKeyStore {
  constructor(private readonly db: Db) {}

  /** On the caller's connection, inside its transaction. */
  async insert(sql: Sql, key: NewDkimKey, at: number): Promise<void> {
    await sql.query(
      `INSERT INTO dkim_keys (domain, selector, algorithm, private_key_pem, public_key, state, auto_activate, created_at, activated_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
      [
        key.domain.toLowerCase(),
        key.selector,
        key.algorithm,
        key.privateKeyPem,
        key.publicKey,
        key.state,
        key.autoActivate,
        at,
        key.state === 'active' ? at : null,
      ],
    );
  }

  async add(keys: NewDkimKey[], at: number): Promise<void> {
    await this.db.transaction(async (client) => {
      for (const key of keys) await this.insert(client, key, at);
    });
  }

  async list(domain: string): Promise<DkimKeyRecord[]> {
    return (await this.db.query<DkimKeyRow>(`SELECT * FROM dkim_keys WHERE domain = $1 ORDER BY selector`, [domain.toLowerCase()])).map(
      toDkimKey,
    );
  }

  async active(domain: string): Promise<DkimKeyRecord[]> {
    const rows = await this.db.query<DkimKeyRow>(`SELECT * FROM dkim_keys WHERE domain = $1 AND state = 'active' ${PRIMARY_ORDER}`, [
      domain.toLowerCase(),
    ]);
    return rows.map(toDkimKey);
  }

  async pendingAuto(): Promise<DkimKeyRecord[]> {
    const rows = await this.db.query<DkimKeyRow>(
      `SELECT * FROM dkim_keys WHERE state = 'pending' AND auto_activate ORDER BY domain, selector`,
    );
    return rows.map(toDkimKey);
  }

  async setPublished(domain: string, selector: string, at: number | null): Promise<void> {
    await this.db.run(`UPDATE dkim_keys SET published_at = $3 WHERE domain = $1 AND selector = $2`, [domain.toLowerCase(), selector, at]);
  }

  async activatePending(domain: string, at: number, retireAt: number): Promise<boolean> {
    const name = domain.toLowerCase();
    return this.db.transaction(async (client) => {
      // Locks the domain row: two activations at once would otherwise both retire and activate.
      await client.query(`SELECT 1 FROM domains WHERE name = $1 FOR UPDATE`, [name]);
      const pending = await client.query(`SELECT 1 FROM dkim_keys WHERE domain = $1 AND state = 'pending'`, [name]);
      if (pending.rowCount === 0) return false;
      await client.query(`UPDATE dkim_keys SET state = 'retiring', retire_at = $2 WHERE domain = $1 AND state = 'active'`, [
        name,
        retireAt,
      ]);
      await client.query(`UPDATE dkim_keys SET state = 'active', activated_at = $2 WHERE domain = $1 AND state = 'pending'`, [name, at]);
      // The domain row keeps showing one signing key (what `domain list` and older releases read).
      await client.query(
        `UPDATE domains SET (selector, algorithm, private_key_pem, public_key) =
           (SELECT selector, algorithm, private_key_pem, public_key FROM dkim_keys
             WHERE domain = $1 AND state = 'active' ${PRIMARY_ORDER} LIMIT 1)
         WHERE name = $1`,
        [name],
      );
      return true;
    });
  }

  async retireDue(now: number): Promise<DkimKeyRecord[]> {
    const rows = await this.db.query<DkimKeyRow>(
      `UPDATE dkim_keys SET state = 'retired', private_key_pem = NULL WHERE state = 'retiring' AND retire_at <= $1 RETURNING *`,
      [now],
    );
    return rows.map(toDkimKey);
  }

  async forget(domain: string, selector: string): Promise<boolean> {
    return (
      (await this.db.run(`DELETE FROM dkim_keys WHERE domain = $1 AND selector = $2 AND state = 'retired'`, [
        domain.toLowerCase(),
        selector,
      ])) > 0
    );
  }
}
