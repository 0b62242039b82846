/**
 * The SQLite implementation of Store. WAL mode with synchronous=FULL, so a committed
 * transaction is on disk; submissions are group-committed (every enqueue waiting in the same
 * tick shares one transaction, and the WAL fsync that makes it durable runs off the event loop
 * and covers every commit before it: wal-sync.ts) so durability does not cap throughput at the
 * disk's fsync rate. The CLI and a running relay open the same file side by side.
 */
import Database from 'better-sqlite3';
import type { RelayConfig } from '../config/schema.js';
import { createPrivateDatabaseFile } from './private-file.js';
import { SCHEMA } from './schema.js';
import { SqliteLimits } from './sqlite-limits.js';
import { SurfaceTables, type MessageRow } from './sqlite-surface.js';
import { WalSync } from './wal-sync.js';
import {
  type CredentialLimits,
  type CredentialRecord,
  type CredentialUsage,
  type DeliveryJob,
  type DomainRecord,
  type EventFilter,
  type EventRow,
  type NewMessage,
  type QueueEntry,
  type RecipientOutcome,
  type RecipientStatus,
  type Stats,
  type Store,
  type ApiEvent,
  type EventQuery,
  type MessageRecord,
  type OutboxEntry,
  type StatsBucket,
  type TemplateRecord,
  type WebhookRecord,
  type Suppression,
} from './store.js';

const PENDING = `status IN ('queued','deferred')`;
const iso = (ms: number | null) => (ms == null ? null : new Date(ms).toISOString());
export const domainOf = (address: string) => address.slice(address.lastIndexOf('@') + 1).toLowerCase();
const normaliseAddress = (address: string) => address.trim().toLowerCase();

interface PendingOutcomes {
  job: DeliveryJob;
  outcomes: RecipientOutcome[];
  resolve: () => void;
  reject: (err: Error) => void;
}

interface PendingEnqueue {
  message: NewMessage;
  resolve: () => void;
  reject: (err: Error) => void;
}

export function openStore(config: Pick<RelayConfig, 'database'>): Store {
  return new SqliteStore(config.database);
}

export class SqliteStore implements Store {
  private readonly db: Database.Database;
  private pending: PendingEnqueue[] = [];
  private readonly pendingOutcomes: PendingOutcomes[] = [];
  private flushScheduled = false;
  private readonly stmt;
  private readonly limits: SqliteLimits;
  private readonly surface: SurfaceTables;
  private readonly walSync: WalSync;

  constructor(file: string) {
    if (file !== ':memory:') createPrivateDatabaseFile(file);
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.pragma('busy_timeout = 5000');
    this.db.pragma('foreign_keys = ON');
    this.db.exec(SCHEMA);
    this.walSync = new WalSync(file === ':memory:' ? undefined : `${file}-wal`);
    this.limits = new SqliteLimits(this.db);
    this.surface = new SurfaceTables(this.db, (name) => this.getCredential(name));
    const db = this.db;
    this.stmt = {
      insertMessage: db.prepare(
        `INSERT INTO messages (queue_id, message_id, credential, mail_from, size, body, received_at, expires_at)
         VALUES (@queueId, @messageId, @credential, @mailFrom, @size, @body, @receivedAt, @expiresAt)`,
      ),
      insertRecipient: db.prepare(
        `INSERT INTO recipients (queue_id, address, domain, status, next_attempt_at, updated_at)
         VALUES (?, ?, ?, 'queued', ?, ?)`,
      ),
      insertEvent: db.prepare(
        `INSERT INTO events (queue_id, message_id, recipient, domain, status, smtp_code, response, category, at)
         VALUES (@queue_id, @message_id, @recipient, @domain, @status, @smtp_code, @response, @category, @at)`,
      ),
      dueJobs: db.prepare(
        `SELECT r.queue_id, r.domain FROM recipients r
         WHERE r.${PENDING} AND r.next_attempt_at <= ? AND (r.lease_until IS NULL OR r.lease_until <= ?)
         ORDER BY r.next_attempt_at`,
      ),
      dueInJob: db.prepare(
        `SELECT r.id, r.address, r.attempts, m.message_id, m.mail_from, m.received_at, m.expires_at
         FROM recipients r JOIN messages m ON m.queue_id = r.queue_id
         WHERE r.queue_id = ? AND r.domain = ? AND r.${PENDING} AND r.next_attempt_at <= ?
           AND (r.lease_until IS NULL OR r.lease_until <= ?)
         ORDER BY r.id`,
      ),
      lease: db.prepare(`UPDATE recipients SET lease_until = ? WHERE id = ?`),
      outcome: db.prepare(
        `UPDATE recipients SET status = @status, attempts = attempts + 1, next_attempt_at = @next,
           lease_until = NULL, last_code = @code, last_response = @response, category = @category, updated_at = @now
         WHERE id = @id`,
      ),
      pendingCount: db.prepare(`SELECT count(*) AS n FROM recipients WHERE queue_id = ? AND ${PENDING}`),
      dropBody: db.prepare(`UPDATE messages SET body = NULL WHERE queue_id = ?`),
      suppress: db.prepare(`INSERT OR IGNORE INTO suppressions (address, reason, created_at) VALUES (?, ?, ?)`),
      isSuppressed: db.prepare(`SELECT 1 FROM suppressions WHERE address = ?`),
      body: db.prepare(`SELECT body FROM messages WHERE queue_id = ?`),
      // The earliest unleased due time (first entry of the due index) and the earliest a leased
      // recipient comes free (the small leased index): no walk over the whole backlog.
      nextDue: db.prepare(
        `SELECT min(coalesce(free, leased), coalesce(leased, free)) AS t FROM (SELECT
           (SELECT next_attempt_at FROM recipients WHERE ${PENDING} AND lease_until IS NULL ORDER BY next_attempt_at LIMIT 1) AS free,
           (SELECT min(max(next_attempt_at, lease_until)) FROM recipients WHERE lease_until IS NOT NULL AND ${PENDING}) AS leased)`,
      ),
      credentialByUsername: db.prepare(`SELECT * FROM credentials WHERE username = ? AND revoked_at IS NULL`),
      credentialDomains: db.prepare(`SELECT domain FROM credential_domains WHERE credential = ? ORDER BY domain`),
      domain: db.prepare(`SELECT * FROM domains WHERE name = ?`),
      // Prepared once: withoutFsync() switches around every batched write.
      syncNormal: db.prepare(`PRAGMA synchronous = NORMAL`),
      syncFull: db.prepare(`PRAGMA synchronous = FULL`),
    };
  }

  // ---- Queue -------------------------------------------------------------------------------

  enqueue(message: NewMessage): Promise<void> {
    return new Promise((resolve, reject) => {
      this.pending.push({ message, resolve, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /** Commits every enqueue that arrived since the last flush in one transaction. */
  private flush(): void {
    const batch = this.pending;
    this.pending = [];
    this.flushScheduled = false;
    try {
      this.withoutFsync(() => this.db.transaction(() => {
        for (const { message } of batch) {
          this.stmt.insertMessage.run({ ...message, size: message.body.length });
          this.limits.recordEnqueued(message);
          for (const rcpt of message.recipients) {
            this.stmt.insertRecipient.run(message.queueId, rcpt, domainOf(rcpt), message.receivedAt, message.receivedAt);
            this.insertEvent({
              queue_id: message.queueId,
              message_id: message.messageId,
              recipient: rcpt,
              status: 'queued',
              smtp_code: null,
              response: null,
              category: null,
              at: message.receivedAt,
            });
          }
        }
      })());
    } catch (err) {
      for (const p of batch) p.reject(err as Error);
      return;
    }
    // Performance (issue 4): durable (and so answered 250) once the WAL fsync after the commit is done.
    this.walSync.sync().then(
      () => batch.forEach((p) => p.resolve()),
      (err: Error) => batch.forEach((p) => p.reject(err)),
    );
  }

  private insertEvent(event: Omit<EventRow, 'at'> & { at?: number }): void {
    const row = { ...event, domain: domainOf(event.recipient), at: event.at ?? Date.now() };
    const { lastInsertRowid } = this.stmt.insertEvent.run(row);
    // Same transaction as the event: a webhook announcement is never lost or invented.
    this.surface.enqueueWebhookEvent(Number(lastInsertRowid), row);
  }

  async recordEvent(event: Omit<EventRow, 'at'> & { at?: number }): Promise<void> {
    this.insertEvent(event);
  }

  claimDue(now: number, limit: number, leaseMs: number): DeliveryJob[] {
    type Row = {
      id: number;
      address: string;
      attempts: number;
      message_id: string;
      mail_from: string;
      received_at: number;
      expires_at: number;
    };
    // A lease lost in a crash needs no fsync: leases exist to expire after a crash anyway.
    return this.withoutFsync(() => this.db.transaction(() => {
      // Walk due recipients in due order (the partial index) just far enough to find `limit` jobs;
      // then every due recipient of each job, so one message and domain is one transaction.
      const keys = new Map<string, { queueId: string; domain: string }>();
      for (const row of this.stmt.dueJobs.iterate(now, now) as IterableIterator<{ queue_id: string; domain: string }>) {
        keys.set(`${row.queue_id}\0${row.domain}`, { queueId: row.queue_id, domain: row.domain });
        if (keys.size >= limit) break;
      }
      const jobs: DeliveryJob[] = [];
      for (const { queueId, domain } of keys.values()) {
        const rows = this.stmt.dueInJob.all(queueId, domain, now, now) as Row[];
        if (rows.length === 0) continue;
        for (const row of rows) this.stmt.lease.run(now + leaseMs, row.id);
        const first = rows[0]!;
        jobs.push({
          queueId,
          messageId: first.message_id,
          mailFrom: first.mail_from,
          domain,
          recipients: rows.map((r) => ({ id: r.id, address: r.address, attempts: r.attempts })),
          receivedAt: first.received_at,
          expiresAt: first.expires_at,
        });
      }
      return jobs;
    }).immediate());
  }

  body(queueId: string): Buffer | undefined {
    const row = this.stmt.body.get(queueId) as { body: Buffer | null } | undefined;
    return row?.body ?? undefined;
  }

  recordOutcomes(job: DeliveryJob, outcomes: RecipientOutcome[]): void {
    this.db.transaction(() => this.applyOutcomes(job, outcomes, Date.now()))();
  }

  private applyOutcomes(job: DeliveryJob, outcomes: RecipientOutcome[], now: number): void {
    const byId = new Map(job.recipients.map((r) => [r.id, r.address]));
    for (const o of outcomes) {
      const address = byId.get(o.recipientId);
      if (address === undefined) continue;
      this.stmt.outcome.run({
        id: o.recipientId,
        status: o.status,
        next: o.status === 'deferred' ? (o.nextAttemptAt ?? now) : null,
        code: o.smtpCode ?? null,
        response: o.response ?? null,
        category: o.category ?? null,
        now,
      });
      this.insertEvent({
        queue_id: job.queueId,
        message_id: job.messageId,
        recipient: address,
        status: o.status,
        smtp_code: o.smtpCode ?? null,
        response: o.response ?? null,
        category: o.category ?? null,
        at: now,
      });
      if (o.status === 'bounced') {
        this.stmt.suppress.run(normaliseAddress(address), o.response ?? 'bounced', now);
      }
    }
    if ((this.stmt.pendingCount.get(job.queueId) as { n: number }).n === 0) this.stmt.dropBody.run(job.queueId);
  }

  // ---- Performance (issue 4): delivery outcomes group-committed across jobs ------------------

  queueOutcomes(job: DeliveryJob, outcomes: RecipientOutcome[]): Promise<void> {
    return new Promise((resolve, reject) => {
      this.pendingOutcomes.push({ job, outcomes, resolve, reject });
      if (this.pendingOutcomes.length === 1) setImmediate(() => this.flushOutcomes());
    });
  }

  /** Runs write transactions with synchronous=NORMAL: committed to the WAL, not fsync'd. */
  private withoutFsync<T>(write: () => T): T {
    this.stmt.syncNormal.run();
    try {
      return write();
    } finally {
      this.stmt.syncFull.run();
    }
  }

  /** One transaction for the outcomes of every attempt that finished since the last. */
  private flushOutcomes(): void {
    const batch = this.pendingOutcomes.splice(0);
    if (batch.length === 0) return;
    // Not fsync'd (the next enqueue's WAL fsync covers it): an outcome lost in a power cut
    // means one more delivery of the message, not a lost message.
    try {
      this.withoutFsync(() => this.db.transaction(() => {
        const now = Date.now();
        for (const { job, outcomes } of batch) this.applyOutcomes(job, outcomes, now);
      })());
    } catch (err) {
      for (const p of batch) p.reject(err as Error);
      return;
    }
    for (const p of batch) p.resolve();
  }

  nextDueAt(): number | null {
    return (this.stmt.nextDue.get() as { t: number | null }).t;
  }

  listQueue(): QueueEntry[] {
    const messages = this.db
      .prepare(
        `SELECT * FROM messages WHERE queue_id IN (SELECT DISTINCT queue_id FROM recipients WHERE ${PENDING})
         ORDER BY received_at`,
      )
      .all() as MessageRow[];
    const recipients = this.db.prepare(`SELECT * FROM recipients WHERE queue_id = ? ORDER BY id`);
    return messages.map((m) => ({
      queueId: m.queue_id,
      messageId: m.message_id,
      credential: m.credential,
      mailFrom: m.mail_from,
      size: m.size,
      receivedAt: m.received_at,
      recipients: (recipients.all(m.queue_id) as Record<string, unknown>[]).map((r) => ({
        address: r.address as string,
        status: r.status as RecipientStatus,
        attempts: r.attempts as number,
        nextAttemptAt: r.next_attempt_at as number | null,
        lastCode: r.last_code as number | null,
        lastResponse: r.last_response as string | null,
      })),
    }));
  }

  retry(queueId: string): boolean {
    if (!this.db.prepare(`SELECT 1 FROM messages WHERE queue_id = ?`).get(queueId)) return false;
    this.db
      .prepare(`UPDATE recipients SET next_attempt_at = ?, lease_until = NULL WHERE queue_id = ? AND ${PENDING}`)
      .run(Date.now(), queueId);
    return true;
  }

  delete(queueId: string): boolean {
    return this.db.prepare(`DELETE FROM messages WHERE queue_id = ?`).run(queueId).changes > 0;
  }

  events(filter: EventFilter = {}): EventRow[] {
    const where: string[] = [];
    const args: unknown[] = [];
    if (filter.recipient) {
      where.push('recipient = ? COLLATE NOCASE');
      args.push(filter.recipient);
    }
    if (filter.status) {
      where.push('status = ?');
      args.push(filter.status);
    }
    if (filter.queueId) {
      where.push('queue_id = ?');
      args.push(filter.queueId);
    }
    const sql = `SELECT queue_id, message_id, recipient, status, smtp_code, response, category, at FROM events
      ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id LIMIT ?`;
    args.push(filter.limit ?? -1);
    return (this.db.prepare(sql).all(...args) as (Omit<EventRow, 'at'> & { at: number })[]).map((e) => ({
      ...e,
      at: iso(e.at)!,
    }));
  }

  stats(): Stats {
    const byStatus = Object.fromEntries(
      (['queued', 'delivered', 'deferred', 'bounced', 'expired', 'suppressed'] as const).map((s) => [s, 0]),
    ) as Record<RecipientStatus, number>;
    const byDomain: Stats['byDomain'] = {};
    const add = (domain: string, status: RecipientStatus, n: number) => {
      byStatus[status] += n;
      const counts = (byDomain[domain] ??= {});
      counts[status] = (counts[status] ?? 0) + n;
    };
    const rows = this.db
      .prepare(
        `SELECT domain, status, count(*) AS n FROM recipients GROUP BY domain, status
         UNION ALL
         SELECT domain, status, count(*) AS n FROM events WHERE status = 'suppressed' GROUP BY domain`,
      )
      .all() as { domain: string; status: RecipientStatus; n: number }[];
    for (const row of rows) add(row.domain, row.status, row.n);
    const queue = this.db
      .prepare(
        `SELECT count(DISTINCT r.queue_id) AS messages, count(*) AS recipients, min(m.received_at) AS oldest
         FROM recipients r JOIN messages m ON m.queue_id = r.queue_id WHERE r.${PENDING}`,
      )
      .get() as { messages: number; recipients: number; oldest: number | null };
    return {
      byStatus,
      byDomain,
      queue: { messages: queue.messages, recipientsPending: queue.recipients, oldestReceivedAt: iso(queue.oldest) },
    };
  }

  // ---- Suppression list --------------------------------------------------------------------

  isSuppressed(address: string): boolean {
    return this.stmt.isSuppressed.get(normaliseAddress(address)) !== undefined;
  }

  listSuppressions(): Suppression[] {
    return (
      this.db.prepare(`SELECT address, reason, created_at FROM suppressions ORDER BY created_at, address`).all() as {
        address: string;
        reason: string;
        created_at: number;
      }[]
    ).map((s) => ({ address: s.address, reason: s.reason, createdAt: iso(s.created_at)! }));
  }

  addSuppression(address: string, reason: string): boolean {
    return this.stmt.suppress.run(normaliseAddress(address), reason, Date.now()).changes > 0;
  }

  removeSuppression(address: string): boolean {
    return this.db.prepare(`DELETE FROM suppressions WHERE address = ?`).run(normaliseAddress(address)).changes > 0;
  }

  // ---- Sender domains ----------------------------------------------------------------------

  addDomain(domain: Omit<DomainRecord, 'createdAt' | 'verifiedAt' | 'verified' | 'checks'>): void {
    this.db
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
        Date.now(),
      );
  }

  getDomain(name: string): DomainRecord | undefined {
    const row = this.stmt.domain.get(name.toLowerCase()) as DomainRow | undefined;
    return row && toDomain(row);
  }

  listDomains(): DomainRecord[] {
    return (this.db.prepare(`SELECT * FROM domains ORDER BY name`).all() as DomainRow[]).map(toDomain);
  }

  setDomainVerification(name: string, verified: boolean, checks: Record<string, unknown>): void {
    this.db
      .prepare(
        `UPDATE domains SET verified_at = CASE WHEN ? THEN coalesce(verified_at, ?) ELSE NULL END, checks = ? WHERE name = ?`,
      )
      .run(verified ? 1 : 0, Date.now(), JSON.stringify(checks), name.toLowerCase());
  }

  removeDomain(name: string): boolean {
    return this.db.transaction(() => {
      this.db.prepare(`DELETE FROM credential_domains WHERE domain = ?`).run(name.toLowerCase());
      return this.db.prepare(`DELETE FROM domains WHERE name = ?`).run(name.toLowerCase()).changes > 0;
    })();
  }

  // ---- Credentials -------------------------------------------------------------------------

  addCredential(cred: Omit<CredentialRecord, 'createdAt' | 'revokedAt'>): void {
    this.db.transaction(() => {
      this.db
        .prepare(`INSERT INTO credentials (name, username, password_hash, created_at) VALUES (?, ?, ?, ?)`)
        .run(cred.name, cred.username, cred.passwordHash, Date.now());
      const link = this.db.prepare(`INSERT INTO credential_domains (credential, domain) VALUES (?, ?)`);
      for (const domain of new Set(cred.domains.map((d) => d.toLowerCase()))) link.run(cred.name, domain);
    })();
  }

  credentialByUsername(username: string): CredentialRecord | undefined {
    const row = this.stmt.credentialByUsername.get(username) as CredentialRow | undefined;
    return row && this.toCredential(row);
  }

  getCredential(name: string): CredentialRecord | undefined {
    const row = this.db.prepare(`SELECT * FROM credentials WHERE name = ?`).get(name) as CredentialRow | undefined;
    return row && this.toCredential(row);
  }

  listCredentials(): CredentialRecord[] {
    return (this.db.prepare(`SELECT * FROM credentials ORDER BY name`).all() as CredentialRow[]).map((r) =>
      this.toCredential(r),
    );
  }

  revokeCredential(name: string): boolean {
    return (
      this.db
        .prepare(`UPDATE credentials SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL`)
        .run(Date.now(), name).changes > 0
    );
  }

  private toCredential(row: CredentialRow): CredentialRecord {
    return {
      name: row.name,
      username: row.username,
      passwordHash: row.password_hash,
      domains: (this.stmt.credentialDomains.all(row.name) as { domain: string }[]).map((d) => d.domain),
      createdAt: iso(row.created_at)!,
      revokedAt: iso(row.revoked_at),
    };
  }

  // ---- HTTP API, templates and webhooks (issue 5): see sqlite-surface.ts ----------------------

  addApiKey(credential: string, keyHash: string): void {
    this.surface.addApiKey(credential, keyHash);
  }
  credentialByApiKey(keyHash: string): CredentialRecord | undefined {
    return this.surface.credentialByApiKey(keyHash);
  }
  addTemplate(template: Pick<TemplateRecord, 'name' | 'subject' | 'text' | 'html'>): number {
    return this.surface.addTemplate(template);
  }
  getTemplate(name: string, version?: number): TemplateRecord | undefined {
    return this.surface.getTemplate(name, version);
  }
  listTemplates(): TemplateRecord[] {
    return this.surface.listTemplates();
  }
  addWebhook(url: string, secret: string, events: RecipientStatus[]): WebhookRecord {
    return this.surface.addWebhook(url, secret, events);
  }
  listWebhooks(): WebhookRecord[] {
    return this.surface.listWebhooks();
  }
  removeWebhook(id: number): boolean {
    return this.surface.removeWebhook(id);
  }
  dueWebhookDeliveries(now: number, limit: number): OutboxEntry[] {
    return this.surface.dueWebhookDeliveries(now, limit);
  }
  webhookDelivered(outboxId: number): void {
    this.surface.webhookDelivered(outboxId);
  }
  webhookFailed(outboxId: number, error: string, nextAttemptAt: number): void {
    this.surface.webhookFailed(outboxId, error, nextAttemptAt);
  }
  webhookBacklog(): { count: number; oldestAt: number | null } {
    return this.surface.webhookBacklog();
  }
  queryEvents(query: EventQuery): ApiEvent[] {
    return this.surface.queryEvents(query);
  }
  getMessage(queueId: string): MessageRecord | undefined {
    return this.surface.getMessage(queueId);
  }
  eventBuckets(from: number, to: number, bucketMs: number, credential?: string): StatsBucket[] {
    return this.surface.eventBuckets(from, to, bucketMs, credential);
  }
  lastFailures(from: number, to: number, credential?: string): ApiEvent[] {
    return this.surface.lastFailures(from, to, credential);
  }
  checkWritable(): void {
    this.surface.checkWritable();
  }

  // ---- Abuse protection: credential limits, usage, idempotency (sqlite-limits.ts) ----------

  getCredentialLimits(name: string): CredentialLimits {
    return this.limits.get(name);
  }

  setCredentialLimits(name: string, limits: Partial<CredentialLimits>): void {
    this.limits.set(name, limits);
  }

  credentialUsage(name: string, at: number): CredentialUsage {
    return this.limits.usage(name, at);
  }

  findIdempotentSubmission(credential: string, key: string, since: number): string | undefined {
    return this.limits.findIdempotent(credential, key, since);
  }

  pruneIdempotencyKeys(before: number): void {
    this.limits.pruneIdempotencyKeys(before);
  }

  close(): void {
    if (this.pending.length) this.flush();
    this.flushOutcomes();
    this.walSync.close();
    this.db.close();
  }
}

interface DomainRow {
  name: string;
  selector: string;
  algorithm: 'rsa' | 'ed25519';
  private_key_pem: string;
  public_key: string;
  verification_token: string;
  verified_at: number | null;
  checks: string | null;
  created_at: number;
}

interface CredentialRow {
  name: string;
  username: string;
  password_hash: string;
  created_at: number;
  revoked_at: number | null;
}

function toDomain(row: DomainRow): DomainRecord {
  return {
    name: row.name,
    selector: row.selector,
    algorithm: row.algorithm,
    privateKeyPem: row.private_key_pem,
    publicKey: row.public_key,
    verificationToken: row.verification_token,
    verified: row.verified_at != null,
    checks: row.checks ? (JSON.parse(row.checks) as Record<string, unknown>) : null,
    createdAt: iso(row.created_at)!,
    verifiedAt: iso(row.verified_at),
  };
}
