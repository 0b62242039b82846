/** What each credential may send (sender identities, Reply-To domains, sandbox allowlist), in PostgreSQL. */
import { OPEN_POLICY, type CredentialPolicy, type CredentialPolicyStore } from '../storage.js';
import type { Db } from './db.js';

interface PolicyRow {
  credential: string;
  senders: string[];
  reply_to_domains: string[];
  sandbox: boolean;
  allowed_recipients: string[];
}

const toPolicy = (r: PolicyRow): CredentialPolicy => ({
  senders: r.senders,
  replyToDomains: r.reply_to_domains,
  sandbox: r.sandbox,
  allowedRecipients: r.allowed_recipients,
});

export class PgCredentialPolicies implements CredentialPolicyStore {
  constructor(private readonly db: Db) {}

  async get(credential: string): Promise<CredentialPolicy> {
    const [row] = await this.db.query<PolicyRow>(`SELECT * FROM credential_policies WHERE credential = $1`, [credential]);
    return row ? toPolicy(row) : { ...OPEN_POLICY };
  }

  async set(credential: string, change: Partial<CredentialPolicy>): Promise<void> {
    // A field not given keeps its stored value (or the open default): NULL parameters fall back to it.
    await this.db.run(
      `INSERT INTO credential_policies AS p (credential, senders, reply_to_domains, sandbox, allowed_recipients)
       VALUES ($1, coalesce($2::text[], '{}'), coalesce($3::text[], '{}'), coalesce($4::boolean, false), coalesce($5::text[], '{}'))
       ON CONFLICT (credential) DO UPDATE SET
         senders = coalesce($2::text[], p.senders),
         reply_to_domains = coalesce($3::text[], p.reply_to_domains),
         sandbox = coalesce($4::boolean, p.sandbox),
         allowed_recipients = coalesce($5::text[], p.allowed_recipients)`,
      [credential, change.senders ?? null, change.replyToDomains ?? null, change.sandbox ?? null, change.allowedRecipients ?? null],
    );
  }

  async list(): Promise<Map<string, CredentialPolicy>> {
    const rows = await this.db.query<PolicyRow>(`SELECT * FROM credential_policies ORDER BY credential`);
    return new Map(rows.map((r) => [r.credential, toPolicy(r)]));
  }
}
