/** The small stores: suppressions, sender domains, credentials with their API keys, templates. */
import type {
  CredentialRecord,
  CredentialStore,
  DomainRecord,
  DomainStore,
  NewCredential,
  NewDomain,
  NewSuppression,
  Suppression,
  SuppressionList,
  TemplateRecord,
  TemplateStore,
} from '../storage.js';
import { normaliseAddress } from '../../envelope/address.js';
import type { Db } from './db.js';
import type { PgDkimKeys } from './dkim-keys.js';
import {
  toCredential,
  toDomain,
  toSuppression,
  toTemplate,
  type CredentialRow,
  type DomainRow,
  type SuppressionRow,
  type TemplateRow,
} from './rows.js';

/** A global entry is stored under credential '' so that (address, credential) can be the key. */
const scope = (credential: string | null) => credential ?? '';

export class PgSuppressions implements SuppressionList {
  constructor(private readonly db: Db) {}

  async isSuppressed(address: string, credential: string): Promise<boolean> {
    const rows = await this.db.query(`SELECT 1 FROM suppressions WHERE address = $1 AND credential IN ('', $2) LIMIT 1`, [
      normaliseAddress(address),
      credential,
    ]);
    return rows.length > 0;
  }

  async list(filter: { credential?: string } = {}): Promise<Suppression[]> {
    const rows =
      filter.credential === undefined
        ? await this.db.query<SuppressionRow>(`SELECT * FROM suppressions ORDER BY created_at, address, credential`)
        : await this.db.query<SuppressionRow>(`SELECT * FROM suppressions WHERE credential = $1 ORDER BY created_at, address`, [
            filter.credential,
          ]);
    return rows.map(toSuppression);
  }

  async add(entry: NewSuppression): Promise<boolean> {
    const written = await this.db.run(
      `INSERT INTO suppressions (address, credential, reason, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`,
      [normaliseAddress(entry.address), scope(entry.credential), entry.reason, Date.now()],
    );
    return written > 0;
  }

  async remove(address: string, credential: string | null): Promise<boolean> {
    const removed = await this.db.run(`DELETE FROM suppressions WHERE address = $1 AND credential = $2`, [
      normaliseAddress(address),
      scope(credential),
    ]);
    return removed > 0;
  }
}

export class PgDomains implements DomainStore {
  constructor(
    private readonly db: Db,
    private readonly keys: PgDkimKeys,
  ) {}

  async add(domain: NewDomain): Promise<void> {
    const at = Date.now();
    await this.db.transaction(async (client) => {
      await client.query(
        `INSERT INTO domains (name, selector, algorithm, private_key_pem, public_key, verification_token, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)`,
        [
          domain.name.toLowerCase(),
          domain.selector,
          domain.algorithm,
          domain.privateKeyPem,
          domain.publicKey,
          domain.verificationToken,
          at,
        ],
      );
      await this.keys.insert(client, { ...domain, domain: domain.name, state: 'active', autoActivate: false }, at);
    });
  }

  async get(name: string): Promise<DomainRecord | undefined> {
    const [row] = await this.db.query<DomainRow>(`SELECT * FROM domains WHERE name = $1`, [name.toLowerCase()]);
    return row && toDomain(row);
  }

  async list(): Promise<DomainRecord[]> {
    return (await this.db.query<DomainRow>(`SELECT * FROM domains ORDER BY name`)).map(toDomain);
  }

  async setVerification(name: string, verified: boolean, checks: Record<string, unknown>): Promise<void> {
    // The first verification time is kept while the domain stays verified.
    await this.db.run(`UPDATE domains SET verified_at = CASE WHEN $2 THEN coalesce(verified_at, $3) END, checks = $4 WHERE name = $1`, [
      name.toLowerCase(),
      verified,
      Date.now(),
      JSON.stringify(checks),
    ]);
  }

  async remove(name: string): Promise<boolean> {
    const [row] = await this.db.query<{ removed: boolean }>(
      `WITH unlinked AS (DELETE FROM credential_domains WHERE domain = $1),
            removed AS (DELETE FROM domains WHERE name = $1 RETURNING 1)
       SELECT EXISTS (SELECT 1 FROM removed) AS removed`,
      [name.toLowerCase()],
    );
    return row!.removed;
  }
}

const CREDENTIAL_COLUMNS = `c.name, c.username, c.password_hash, c.created_at, c.revoked_at,
  c.old_password_hash, c.old_secret_until, c.old_secret_logins, c.old_secret_last_login_at,
  array(SELECT d.domain FROM credential_domains d WHERE d.credential = c.name ORDER BY d.domain) AS domains,
  array(SELECT o.key_hash FROM api_keys o WHERE o.credential = c.name AND o.expires_at IS NOT NULL ORDER BY o.key_hash) AS old_api_keys`;

export class PgCredentials implements CredentialStore {
  constructor(private readonly db: Db) {}

  async add(credential: NewCredential): Promise<void> {
    await this.db.run(
      `WITH added AS (
         INSERT INTO credentials (name, username, password_hash, created_at) VALUES ($1, $2, $3, $4) RETURNING name
       )
       INSERT INTO credential_domains (credential, domain) SELECT added.name, d FROM added, unnest($5::text[]) AS d`,
      [
        credential.name,
        credential.username,
        credential.passwordHash,
        Date.now(),
        [...new Set(credential.domains.map((d) => d.toLowerCase()))],
      ],
    );
  }

  async byUsername(username: string): Promise<CredentialRecord | undefined> {
    return this.one(`SELECT ${CREDENTIAL_COLUMNS} FROM credentials c WHERE c.username = $1 AND c.revoked_at IS NULL`, [username]);
  }

  async get(name: string): Promise<CredentialRecord | undefined> {
    return this.one(`SELECT ${CREDENTIAL_COLUMNS} FROM credentials c WHERE c.name = $1`, [name]);
  }

  async list(): Promise<CredentialRecord[]> {
    return (await this.db.query<CredentialRow>(`SELECT ${CREDENTIAL_COLUMNS} FROM credentials c ORDER BY c.name`)).map(toCredential);
  }

  async revoke(name: string): Promise<boolean> {
    return (await this.db.run(`UPDATE credentials SET revoked_at = $2 WHERE name = $1 AND revoked_at IS NULL`, [name, Date.now()])) > 0;
  }

  async addApiKey(credential: string, keyHash: string): Promise<void> {
    await this.db.run(`INSERT INTO api_keys (key_hash, credential, created_at) VALUES ($1, $2, $3)`, [keyHash, credential, Date.now()]);
  }

  async byApiKey(keyHash: string): Promise<CredentialRecord | undefined> {
    return this.one(
      `SELECT ${CREDENTIAL_COLUMNS} FROM api_keys k JOIN credentials c ON c.name = k.credential
       WHERE k.key_hash = $1 AND c.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > $2)`,
      [keyHash, Date.now()],
    );
  }

  async rotate(name: string, rotation: { passwordHash: string; apiKeyHash?: string; until: number }): Promise<boolean> {
    return this.db.transaction(async (client) => {
      const rotated = await client.query(
        `UPDATE credentials SET old_password_hash = password_hash, password_hash = $2, old_secret_until = $3,
           old_secret_logins = 0, old_secret_last_login_at = NULL
         WHERE name = $1 AND revoked_at IS NULL`,
        [name, rotation.passwordHash, rotation.until],
      );
      if (!rotated.rowCount) return false;
      // Keys an earlier rotation retired end now, with the old password they went with.
      await client.query(`DELETE FROM api_keys WHERE credential = $1 AND expires_at IS NOT NULL`, [name]);
      if (rotation.apiKeyHash !== undefined) {
        await client.query(`UPDATE api_keys SET expires_at = $2 WHERE credential = $1`, [name, rotation.until]);
        await client.query(`INSERT INTO api_keys (key_hash, credential, created_at) VALUES ($1, $2, $3)`, [
          rotation.apiKeyHash,
          name,
          Date.now(),
        ]);
      }
      return true;
    }, 'on');
  }

  async recordOldSecretLogin(name: string, at: number): Promise<void> {
    await this.db.run(
      `UPDATE credentials SET old_secret_logins = old_secret_logins + 1,
         old_secret_last_login_at = greatest(old_secret_last_login_at, $2) WHERE name = $1`,
      [name, at],
    );
  }

  private async one(sql: string, params: unknown[]): Promise<CredentialRecord | undefined> {
    const [row] = await this.db.query<CredentialRow>(sql, params);
    return row && toCredential(row);
  }
}

export class PgTemplates implements TemplateStore {
  constructor(private readonly db: Db) {}

  async add(template: Pick<TemplateRecord, 'name' | 'subject' | 'text' | 'html'>): Promise<number> {
    // Two adds of one name at once would pick the same version: the lock orders them.
    return this.db.transaction(async (client) => {
      await client.query(`SELECT pg_advisory_xact_lock(hashtextextended('relay-template:' || $1, 0))`, [template.name]);
      const { rows } = await client.query<{ version: number }>(
        `INSERT INTO templates (name, version, subject, text, html, created_at)
         SELECT $1, coalesce(max(version), 0) + 1, $2, $3, $4, $5 FROM templates WHERE name = $1
         RETURNING version`,
        [template.name, template.subject, template.text, template.html, Date.now()],
      );
      return rows[0]!.version;
    });
  }

  async get(name: string, version?: number): Promise<TemplateRecord | undefined> {
    const [row] =
      version === undefined
        ? await this.db.query<TemplateRow>(`SELECT * FROM templates WHERE name = $1 ORDER BY version DESC LIMIT 1`, [name])
        : await this.db.query<TemplateRow>(`SELECT * FROM templates WHERE name = $1 AND version = $2`, [name, version]);
    return row && toTemplate(row);
  }

  async list(): Promise<TemplateRecord[]> {
    const rows = await this.db.query<TemplateRow>(`SELECT DISTINCT ON (name) * FROM templates ORDER BY name, version DESC`);
    return rows.map(toTemplate);
  }

  async remove(name: string): Promise<boolean> {
    return (await this.db.run(`DELETE FROM templates WHERE name = $1`, [name])) > 0;
  }
}
