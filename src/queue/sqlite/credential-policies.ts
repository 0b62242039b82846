/** What each credential may send (sender identities, Reply-To domains, sandbox allowlist), in SQLite. */
import { OPEN_POLICY, type CredentialPolicy, type CredentialPolicyStore } from '../storage.js';
import type { SqliteConnection } from './connection.js';

interface PolicyRow {
  credential: string;
  senders: string;
  reply_to_domains: string;
  sandbox: number;
  allowed_recipients: string;
}

const toPolicy = (r: PolicyRow): CredentialPolicy => ({
  senders: JSON.parse(r.senders) as string[],
  replyToDomains: JSON.parse(r.reply_to_domains) as string[],
  sandbox: r.sandbox === 1,
  allowedRecipients: JSON.parse(r.allowed_recipients) as string[],
});

export class SqliteCredentialPolicies implements CredentialPolicyStore {
  constructor(private readonly conn: SqliteConnection) {}

  async get(credential: string): Promise<CredentialPolicy> {
    const row = this.conn.db.prepare(`SELECT * FROM credential_policies WHERE credential = ?`).get(credential) as PolicyRow | undefined;
    return row ? toPolicy(row) : { ...OPEN_POLICY };
  }

  async set(credential: string, change: Partial<CredentialPolicy>): Promise<void> {
    const db = this.conn.db;
    this.conn.writeNow(() => {
      const row = db.prepare(`SELECT * FROM credential_policies WHERE credential = ?`).get(credential) as PolicyRow | undefined;
      const next = { ...(row ? toPolicy(row) : OPEN_POLICY), ...change };
      db.prepare(
        `INSERT OR REPLACE INTO credential_policies (credential, senders, reply_to_domains, sandbox, allowed_recipients) VALUES (?, ?, ?, ?, ?)`,
      ).run(
        credential,
        JSON.stringify(next.senders),
        JSON.stringify(next.replyToDomains),
        next.sandbox ? 1 : 0,
        JSON.stringify(next.allowedRecipients),
      );
    });
  }

  async list(): Promise<Map<string, CredentialPolicy>> {
    const rows = this.conn.db.prepare(`SELECT * FROM credential_policies ORDER BY credential`).all() as PolicyRow[];
    return new Map(rows.map((r) => [r.credential, toPolicy(r)]));
  }
}
