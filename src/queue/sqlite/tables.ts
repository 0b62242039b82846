/** The smaller SQLite stores: suppressions, sender domains, credentials, templates and webhooks. */
import type Database from 'better-sqlite3';
import { normaliseAddress } from '../../envelope/address.js';
import type {
  CredentialRecord,
  CredentialStore,
  DomainRecord,
  DomainStore,
  Lease,
  NewCredential,
  NewDomain,
  NewSuppression,
  OutboxEntry,
  RecipientStatus,
  Suppression,
  SuppressionList,
  TemplateRecord,
  TemplateStore,
  WebhookRecord,
  WebhookStore,
} from '../storage.js';
import type { SqliteConnection } from './connection.js';
import type { SqliteDkimKeys } from './dkim-keys.js';
import {
  type CredentialRow,
  type DomainRow,
  type EventRow,
  type TemplateRow,
  type WebhookRow,
  toCredential,
  toDomain,
  toEvent,
  toTemplate,
  toWebhook,
} from './rows.js';

/** Suppression scope as stored: '' is every credential. */
const scope = (credential: string | null) => credential ?? '';

export class SqliteSuppressions implements SuppressionList {
  private readonly stmt;

  constructor(private readonly conn: SqliteConnection) {
    const db = conn.db;
    this.stmt = {
      insert: db.prepare(`INSERT OR IGNORE INTO suppressions (address, credential, reason, created_at) VALUES (?, ?, ?, ?)`),
      check: db.prepare(`SELECT 1 FROM suppressions WHERE address = ? AND credential IN ('', ?) LIMIT 1`),
    };
  }

  /** Inside the caller's transaction. */
  insert(entry: NewSuppression, at: number): boolean {
    return this.stmt.insert.run(normaliseAddress(entry.address), scope(entry.credential), entry.reason, at).changes > 0;
  }

  async isSuppressed(address: string, credential: string): Promise<boolean> {
    return this.stmt.check.get(normaliseAddress(address), credential) !== undefined;
  }

  async list(filter: { credential?: string } = {}): Promise<Suppression[]> {
    const where = filter.credential === undefined ? '' : 'WHERE credential = ?';
    const rows = this.conn.db
      .prepare(`SELECT address, credential, reason, created_at FROM suppressions ${where} ORDER BY created_at, address`)
      .all(...(filter.credential === undefined ? [] : [filter.credential])) as {
      address: string;
      credential: string;
      reason: string;
      created_at: number;
    }[];
    return rows.map((r) => ({ address: r.address, credential: r.credential || null, reason: r.reason, createdAt: r.created_at }));
  }

  async add(entry: NewSuppression): Promise<boolean> {
    return this.conn.writeNow(() => this.insert(entry, Date.now()));
  }

  async remove(address: string, credential: string | null): Promise<boolean> {
    return this.conn.writeNow(
      () =>
        this.conn.db
          .prepare(`DELETE FROM suppressions WHERE address = ? AND credential = ?`)
          .run(normaliseAddress(address), scope(credential)).changes > 0,
    );
  }
}

export class SqliteDomains implements DomainStore {
  private readonly byName: Database.Statement;

  constructor(
    private readonly conn: SqliteConnection,
    private readonly keys: SqliteDkimKeys,
  ) {
    this.byName = conn.db.prepare(`SELECT * FROM domains WHERE name = ?`);
  }

  async add(domain: NewDomain): Promise<void> {
    const at = Date.now();
    this.conn.writeNow(() => {
      this.conn.db
        .prepare(
          `INSERT INTO domains (name, selector, algorithm, private_key_pem, public_key, verification_token, created_at)
           VALUES (?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(
          domain.name.toLowerCase(),
          domain.selector,
          domain.algorithm,
          domain.privateKeyPem,
          domain.publicKey,
          domain.verificationToken,
          at,
        );
      this.keys.insert({ ...domain, domain: domain.name, state: 'active', autoActivate: false }, at);
    });
  }

  async get(name: string): Promise<DomainRecord | undefined> {
    const row = this.byName.get(name.toLowerCase()) as DomainRow | undefined;
    return row && toDomain(row);
  }

  async list(): Promise<DomainRecord[]> {
    return (this.conn.db.prepare(`SELECT * FROM domains ORDER BY name`).all() as DomainRow[]).map(toDomain);
  }

  async setVerification(name: string, verified: boolean, checks: Record<string, unknown>): Promise<void> {
    this.conn.writeNow(() =>
      this.conn.db
        .prepare(`UPDATE domains SET verified_at = CASE WHEN ? THEN coalesce(verified_at, ?) ELSE NULL END, checks = ? WHERE name = ?`)
        .run(verified ? 1 : 0, Date.now(), JSON.stringify(checks), name.toLowerCase()),
    );
  }

  async remove(name: string): Promise<boolean> {
    return this.conn.writeNow(() => {
      this.conn.db.prepare(`DELETE FROM credential_domains WHERE domain = ?`).run(name.toLowerCase());
      return this.conn.db.prepare(`DELETE FROM domains WHERE name = ?`).run(name.toLowerCase()).changes > 0;
    });
  }
}

export class SqliteCredentials implements CredentialStore {
  private readonly stmt;

  constructor(private readonly conn: SqliteConnection) {
    const db = conn.db;
    this.stmt = {
      byUsername: db.prepare(`SELECT * FROM credentials WHERE username = ? AND revoked_at IS NULL`),
      byName: db.prepare(`SELECT * FROM credentials WHERE name = ?`),
      domains: db.prepare(`SELECT domain FROM credential_domains WHERE credential = ? ORDER BY domain`).pluck(),
      byApiKey: db.prepare(
        `SELECT c.* FROM api_keys k JOIN credentials c ON c.name = k.credential
         WHERE k.key_hash = ? AND c.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > ?)`,
      ),
      oldApiKeys: db.prepare(`SELECT key_hash FROM api_keys WHERE credential = ? AND expires_at IS NOT NULL ORDER BY key_hash`).pluck(),
    };
  }

  private record(row: CredentialRow | undefined): CredentialRecord | undefined {
    if (!row) return undefined;
    const oldApiKeys = row.old_secret_until === null ? [] : (this.stmt.oldApiKeys.all(row.name) as string[]);
    return toCredential(row, this.stmt.domains.all(row.name) as string[], oldApiKeys);
  }

  async add(credential: NewCredential): Promise<void> {
    this.conn.writeNow(() => {
      this.conn.db
        .prepare(`INSERT INTO credentials (name, username, password_hash, created_at) VALUES (?, ?, ?, ?)`)
        .run(credential.name, credential.username, credential.passwordHash, Date.now());
      const link = this.conn.db.prepare(`INSERT INTO credential_domains (credential, domain) VALUES (?, ?)`);
      for (const domain of new Set(credential.domains.map((d) => d.toLowerCase()))) link.run(credential.name, domain);
    });
  }

  async byUsername(username: string): Promise<CredentialRecord | undefined> {
    return this.record(this.stmt.byUsername.get(username) as CredentialRow | undefined);
  }

  async get(name: string): Promise<CredentialRecord | undefined> {
    return this.record(this.stmt.byName.get(name) as CredentialRow | undefined);
  }

  async list(): Promise<CredentialRecord[]> {
    const rows = this.conn.db.prepare(`SELECT * FROM credentials ORDER BY name`).all() as CredentialRow[];
    return rows.map((r) => this.record(r)!);
  }

  async revoke(name: string): Promise<boolean> {
    return this.conn.writeNow(
      () =>
        this.conn.db.prepare(`UPDATE credentials SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL`).run(Date.now(), name).changes >
        0,
    );
  }

  async addApiKey(credential: string, keyHash: string): Promise<void> {
    this.conn.writeNow(() =>
      this.conn.db.prepare(`INSERT INTO api_keys (key_hash, credential, created_at) VALUES (?, ?, ?)`).run(keyHash, credential, Date.now()),
    );
  }

  async byApiKey(keyHash: string): Promise<CredentialRecord | undefined> {
    return this.record(this.stmt.byApiKey.get(keyHash, Date.now()) as CredentialRow | undefined);
  }

  async rotate(name: string, rotation: { passwordHash: string; apiKeyHash?: string; until: number }): Promise<boolean> {
    const db = this.conn.db;
    return this.conn.durableWrite(() => {
      const rotated = db
        .prepare(
          `UPDATE credentials SET old_password_hash = password_hash, password_hash = ?, old_secret_until = ?,
             old_secret_logins = 0, old_secret_last_login_at = NULL
           WHERE name = ? AND revoked_at IS NULL`,
        )
        .run(rotation.passwordHash, rotation.until, name).changes;
      if (rotated === 0) return false;
      // Keys an earlier rotation retired end now, with the old password they went with.
      db.prepare(`DELETE FROM api_keys WHERE credential = ? AND expires_at IS NOT NULL`).run(name);
      if (rotation.apiKeyHash !== undefined) {
        db.prepare(`UPDATE api_keys SET expires_at = ? WHERE credential = ?`).run(rotation.until, name);
        db.prepare(`INSERT INTO api_keys (key_hash, credential, created_at) VALUES (?, ?, ?)`).run(rotation.apiKeyHash, name, Date.now());
      }
      return true;
    });
  }

  async recordOldSecretLogin(name: string, at: number): Promise<void> {
    await this.conn.lazyWrite(() =>
      this.conn.db
        .prepare(
          `UPDATE credentials SET old_secret_logins = old_secret_logins + 1,
             old_secret_last_login_at = max(coalesce(old_secret_last_login_at, 0), ?) WHERE name = ?`,
        )
        .run(at, name),
    );
  }
}

export class SqliteTemplates implements TemplateStore {
  constructor(private readonly conn: SqliteConnection) {}

  async add(template: Pick<TemplateRecord, 'name' | 'subject' | 'text' | 'html'>): Promise<number> {
    const db = this.conn.db;
    return this.conn.writeNow(() => {
      const version = db.prepare(`SELECT coalesce(max(version), 0) + 1 FROM templates WHERE name = ?`).pluck().get(template.name) as number;
      db.prepare(`INSERT INTO templates (name, version, subject, text, html, created_at) VALUES (?, ?, ?, ?, ?, ?)`).run(
        template.name,
        version,
        template.subject,
        template.text,
        template.html,
        Date.now(),
      );
      return version;
    });
  }

  async get(name: string, version?: number): Promise<TemplateRecord | undefined> {
    const db = this.conn.db;
    const row = (
      version === undefined
        ? db.prepare(`SELECT * FROM templates WHERE name = ? ORDER BY version DESC LIMIT 1`).get(name)
        : db.prepare(`SELECT * FROM templates WHERE name = ? AND version = ?`).get(name, version)
    ) as TemplateRow | undefined;
    return row && toTemplate(row);
  }

  async list(): Promise<TemplateRecord[]> {
    const rows = this.conn.db
      .prepare(`SELECT t.* FROM templates t WHERE version = (SELECT max(version) FROM templates WHERE name = t.name) ORDER BY name`)
      .all() as TemplateRow[];
    return rows.map(toTemplate);
  }

  async remove(name: string): Promise<boolean> {
    return this.conn.writeNow(() => this.conn.db.prepare(`DELETE FROM templates WHERE name = ?`).run(name).changes > 0);
  }
}

export class SqliteWebhooks implements WebhookStore {
  constructor(private readonly conn: SqliteConnection) {}

  async add(url: string, secret: string, events: RecipientStatus[]): Promise<WebhookRecord> {
    const now = Date.now();
    const { lastInsertRowid } = this.conn.writeNow(() =>
      this.conn.db
        .prepare(`INSERT INTO webhooks (url, secret, events, created_at) VALUES (?, ?, ?, ?)`)
        .run(url, secret, events.join(','), now),
    );
    return { id: Number(lastInsertRowid), url, secret, events, createdAt: now };
  }

  async list(): Promise<WebhookRecord[]> {
    return (this.conn.db.prepare(`SELECT * FROM webhooks ORDER BY id`).all() as WebhookRow[]).map(toWebhook);
  }

  async remove(id: number): Promise<boolean> {
    return this.conn.writeNow(() => this.conn.db.prepare(`DELETE FROM webhooks WHERE id = ?`).run(id).changes > 0);
  }

  async claimDue(now: number, limit: number, lease: Lease): Promise<OutboxEntry[]> {
    const db = this.conn.db;
    type Row = EventRow & { outbox_id: number; webhook_id: number; attempts: number; url: string; secret: string };
    const due = db.prepare(
      `SELECT o.id AS outbox_id, o.webhook_id, o.attempts, w.url, w.secret, e.*
       FROM webhook_outbox o JOIN webhooks w ON w.id = o.webhook_id JOIN events e ON e.id = o.event_id
       WHERE o.next_attempt_at <= ? ORDER BY o.next_attempt_at, o.id LIMIT ?`,
    );
    // Polled every second: an empty outbox costs a read, never the write lock.
    if (due.get(now, limit) === undefined) return [];
    return this.conn.writeNow(() => {
      const rows = due.all(now, limit) as Row[];
      const hold = db.prepare(`UPDATE webhook_outbox SET next_attempt_at = ? WHERE id = ?`);
      for (const r of rows) hold.run(now + lease.ms, r.outbox_id);
      return rows.map((r) => ({
        id: r.outbox_id,
        webhookId: r.webhook_id,
        url: r.url,
        secret: r.secret,
        attempts: r.attempts,
        event: toEvent(r),
      }));
    });
  }

  async delivered(outboxId: number): Promise<void> {
    this.conn.writeNow(() => this.conn.db.prepare(`DELETE FROM webhook_outbox WHERE id = ?`).run(outboxId));
  }

  async failed(outboxId: number, error: string, nextAttemptAt: number): Promise<void> {
    this.conn.writeNow(() =>
      this.conn.db
        .prepare(`UPDATE webhook_outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? WHERE id = ?`)
        .run(error, nextAttemptAt, outboxId),
    );
  }

  async backlog(): Promise<{ count: number; oldestAt: number | null }> {
    const row = this.conn.db.prepare(`SELECT count(*) AS n, min(created_at) AS oldest FROM webhook_outbox`).get() as {
      n: number;
      oldest: number | null;
    };
    return { count: row.n, oldestAt: row.oldest };
  }
}
