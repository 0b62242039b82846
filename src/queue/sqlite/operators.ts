/** Operator tokens (their hashes) and roles. */
import type { NewOperator, OperatorRecord, OperatorRole, OperatorStore } from '../storage.js';
import type { SqliteConnection } from './connection.js';

interface OperatorRow {
  name: string;
  role: OperatorRole;
  token_id: string;
  token_hash: string;
  created_at: number;
  token_issued_at: number;
  revoked_at: number | null;
}

const toOperator = (row: OperatorRow): OperatorRecord => ({
  name: row.name,
  role: row.role,
  tokenId: row.token_id,
  tokenHash: row.token_hash,
  createdAt: row.created_at,
  tokenIssuedAt: row.token_issued_at,
  revokedAt: row.revoked_at,
});

export class SqliteOperators implements OperatorStore {
  constructor(private readonly conn: SqliteConnection) {}

  async add(operator: NewOperator, at: number): Promise<boolean> {
    return this.conn.writeNow(
      () =>
        this.conn.db
          .prepare(
            `INSERT INTO operators (name, role, token_id, token_hash, created_at, token_issued_at) VALUES (?, ?, ?, ?, ?, ?)
             ON CONFLICT (name) DO NOTHING`,
          )
          .run(operator.name, operator.role, operator.tokenId, operator.tokenHash, at, at).changes > 0,
    );
  }

  async get(name: string): Promise<OperatorRecord | undefined> {
    const row = this.conn.db.prepare(`SELECT * FROM operators WHERE name = ?`).get(name) as OperatorRow | undefined;
    return row && toOperator(row);
  }

  async byTokenId(tokenId: string): Promise<OperatorRecord | undefined> {
    const row = this.conn.db.prepare(`SELECT * FROM operators WHERE token_id = ? AND revoked_at IS NULL`).get(tokenId) as
      OperatorRow | undefined;
    return row && toOperator(row);
  }

  async list(): Promise<OperatorRecord[]> {
    return (this.conn.db.prepare(`SELECT * FROM operators ORDER BY name`).all() as OperatorRow[]).map(toOperator);
  }

  async revoke(name: string, at: number): Promise<boolean> {
    return this.conn.writeNow(
      () => this.conn.db.prepare(`UPDATE operators SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL`).run(at, name).changes > 0,
    );
  }

  async replaceToken(name: string, token: { tokenId: string; tokenHash: string }, at: number): Promise<boolean> {
    return this.conn.writeNow(
      () =>
        this.conn.db
          .prepare(`UPDATE operators SET token_id = ?, token_hash = ?, token_issued_at = ? WHERE name = ? AND revoked_at IS NULL`)
          .run(token.tokenId, token.tokenHash, at, name).changes > 0,
    );
  }
}
