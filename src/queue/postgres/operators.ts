/** Operator tokens (their hashes) and roles. */
import type { NewOperator, OperatorRecord, OperatorRole, OperatorStore } from '../storage.js';
import type { Db } from './db.js';

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

export class PgOperators implements OperatorStore {
  constructor(private readonly db: Db) {}

  async add(operator: NewOperator, at: number): Promise<boolean> {
    const written = await this.db.run(
      `INSERT INTO operators (name, role, token_id, token_hash, created_at, token_issued_at) VALUES ($1, $2, $3, $4, $5, $5)
       ON CONFLICT (name) DO NOTHING`,
      [operator.name, operator.role, operator.tokenId, operator.tokenHash, at],
    );
    return written > 0;
  }

  async get(name: string): Promise<OperatorRecord | undefined> {
    const [row] = await this.db.query<OperatorRow>(`SELECT * FROM operators WHERE name = $1`, [name]);
    return row && toOperator(row);
  }

  async byTokenId(tokenId: string): Promise<OperatorRecord | undefined> {
    const [row] = await this.db.query<OperatorRow>(`SELECT * FROM operators WHERE token_id = $1 AND revoked_at IS NULL`, [tokenId]);
    return row && toOperator(row);
  }

  async list(): Promise<OperatorRecord[]> {
    return (await this.db.query<OperatorRow>(`SELECT * FROM operators ORDER BY name`)).map(toOperator);
  }

  async revoke(name: string, at: number): Promise<boolean> {
    return (await this.db.run(`UPDATE operators SET revoked_at = $2 WHERE name = $1 AND revoked_at IS NULL`, [name, at])) > 0;
  }

  async replaceToken(name: string, token: { tokenId: string; tokenHash: string }, at: number): Promise<boolean> {
    const written = await this.db.run(
      `UPDATE operators SET token_id = $2, token_hash = $3, token_issued_at = $4 WHERE name = $1 AND revoked_at IS NULL`,
      [name, token.tokenId, token.tokenHash, at],
    );
    return written > 0;
  }
}
