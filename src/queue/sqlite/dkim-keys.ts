/** The DKIM keys of sender domains. Private keys are read and written only here (and copied, as stored, to the domain row). */
import type { DkimKeyRecord, DkimKeyStore, NewDkimKey } from '../storage.js';
import type { SqliteConnection } from './connection.js';

interface DkimKeyRow {
  domain: string;
  selector: string;
  algorithm: 'rsa' | 'ed25519';
  private_key_pem: string | null;
  public_key: string;
  state: DkimKeyRecord['state'];
  auto_activate: number;
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
  autoActivate: r.auto_activate === 1,
  createdAt: r.created_at,
  publishedAt: r.published_at,
  activatedAt: r.activated_at,
  retireAt: r.retire_at,
});

export class SqliteDkimKeys implements DkimKeyStore {
  private readonly stmt;

  constructor(private readonly conn: SqliteConnection) {
    const db = conn.db;
    this.stmt = {
      insert: db.prepare(
        `INSERT INTO dkim_keys (domain, selector, algorithm, private_key_pem, public_key, state, auto_activate, created_at, activated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      list: db.prepare(`SELECT * FROM dkim_keys WHERE domain = ? ORDER BY selector`),
      active: db.prepare(`SELECT * FROM dkim_keys WHERE domain = ? AND state = 'active' ORDER BY algorithm = 'rsa' DESC, selector`),
    };
  }

  /** Inside the caller's transaction. */
  insert(key: NewDkimKey, at: number): void {
    this.stmt.insert.run(
      key.domain.toLowerCase(),
      key.selector,
      key.algorithm,
      key.privateKeyPem,
      key.publicKey,
      key.state,
      key.autoActivate ? 1 : 0,
      at,
      key.state === 'active' ? at : null,
    );
  }

  async add(keys: NewDkimKey[], at: number): Promise<void> {
    this.conn.writeNow(() => keys.forEach((key) => this.insert(key, at)));
  }

  async list(domain: string): Promise<DkimKeyRecord[]> {
    return (this.stmt.list.all(domain.toLowerCase()) as DkimKeyRow[]).map(toDkimKey);
  }

  async active(domain: string): Promise<DkimKeyRecord[]> {
    return (this.stmt.active.all(domain.toLowerCase()) as DkimKeyRow[]).map(toDkimKey);
  }

  async pendingAuto(): Promise<DkimKeyRecord[]> {
    const rows = this.conn.db
      .prepare(`SELECT * FROM dkim_keys WHERE state = 'pending' AND auto_activate = 1 ORDER BY domain, selector`)
      .all() as DkimKeyRow[];
    return rows.map(toDkimKey);
  }

  async setPublished(domain: string, selector: string, at: number | null): Promise<void> {
    this.conn.writeNow(() =>
      this.conn.db
        .prepare(`UPDATE dkim_keys SET published_at = ? WHERE domain = ? AND selector = ?`)
        .run(at, domain.toLowerCase(), selector),
    );
  }

  async activatePending(domain: string, at: number, retireAt: number): Promise<boolean> {
    const name = domain.toLowerCase();
    const db = this.conn.db;
    return this.conn.writeNow(() => {
      const pending = db.prepare(`SELECT 1 FROM dkim_keys WHERE domain = ? AND state = 'pending'`).get(name);
      if (!pending) return false;
      db.prepare(`UPDATE dkim_keys SET state = 'retiring', retire_at = ? WHERE domain = ? AND state = 'active'`).run(retireAt, name);
      db.prepare(`UPDATE dkim_keys SET state = 'active', activated_at = ? WHERE domain = ? AND state = 'pending'`).run(at, name);
      // The domain row keeps showing one signing key (what `domain list` and older releases read).
      db.prepare(
        `UPDATE domains SET (selector, algorithm, private_key_pem, public_key) =
           (SELECT selector, algorithm, private_key_pem, public_key FROM dkim_keys
             WHERE domain = ? AND state = 'active' ORDER BY algorithm = 'rsa' DESC, selector LIMIT 1)
         WHERE name = ?`,
      ).run(name, name);
      return true;
    });
  }

  async retireDue(now: number): Promise<DkimKeyRecord[]> {
    return this.conn.writeNow(() => {
      const rows = this.conn.db
        .prepare(`UPDATE dkim_keys SET state = 'retired', private_key_pem = NULL WHERE state = 'retiring' AND retire_at <= ? RETURNING *`)
        .all(now) as DkimKeyRow[];
      return rows.map(toDkimKey);
    });
  }

  async forget(domain: string, selector: string): Promise<boolean> {
    return this.conn.writeNow(
      () =>
        this.conn.db
          .prepare(`DELETE FROM dkim_keys WHERE domain = ? AND selector = ? AND state = 'retired'`)
          .run(domain.toLowerCase(), selector).changes > 0,
    );
  }
}
