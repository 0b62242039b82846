/**
 * The SQLite side of the operator and API surface (issue 5): API keys, templates, webhooks and
 * their outbox, and the event, message and time-bucket queries the HTTP API reads. SqliteStore
 * delegates to this class on the same connection, so an outbox row is written in the same
 * transaction as the event it announces.
 */
import type Database from 'better-sqlite3';
import type {
  ApiEvent,
  CredentialRecord,
  EventQuery,
  EventRow,
  MessageRecord,
  OutboxEntry,
  RecipientStatus,
  StatsBucket,
  TemplateRecord,
  WebhookRecord,
} from './store.js';

/** The statuses a webhook can subscribe to ("queued" is the API's own 202). */
export const WEBHOOK_STATUSES: readonly RecipientStatus[] = ['delivered', 'deferred', 'bounced', 'expired', 'suppressed'];

const iso = (ms: number) => new Date(ms).toISOString();
const BY_CREDENTIAL = `queue_id IN (SELECT queue_id FROM messages WHERE credential = ?)`;

type EventDbRow = Omit<EventRow, 'at'> & { id: number; domain: string; at: number };
const toApiEvent = (row: EventDbRow): ApiEvent => ({ ...row, at: iso(row.at) });

export class SurfaceTables {
  private readonly stmt;

  constructor(
    private readonly db: Database.Database,
    private readonly credentialByName: (name: string) => CredentialRecord | undefined,
  ) {
    this.stmt = {
      subscribers: db.prepare(`SELECT id, events FROM webhooks`),
      insertOutbox: db.prepare(
        `INSERT INTO webhook_outbox (webhook_id, event_id, payload, next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?)`,
      ),
    };
  }

  // ---- API keys ----------------------------------------------------------------------------

  addApiKey(credential: string, keyHash: string): void {
    this.db.prepare(`INSERT INTO api_keys (key_hash, credential, created_at) VALUES (?, ?, ?)`).run(keyHash, credential, Date.now());
  }

  credentialByApiKey(keyHash: string): CredentialRecord | undefined {
    const row = this.db.prepare(`SELECT credential FROM api_keys WHERE key_hash = ?`).get(keyHash) as { credential: string } | undefined;
    const credential = row && this.credentialByName(row.credential);
    return credential && !credential.revokedAt ? credential : undefined;
  }

  // ---- Templates ---------------------------------------------------------------------------

  addTemplate(template: Pick<TemplateRecord, 'name' | 'subject' | 'text' | 'html'>): number {
    return this.db.transaction(() => {
      const { v } = this.db.prepare(`SELECT coalesce(max(version), 0) + 1 AS v FROM templates WHERE name = ?`).get(template.name) as { v: number };
      this.db
        .prepare(`INSERT INTO templates (name, version, subject, text, html, created_at) VALUES (?, ?, ?, ?, ?, ?)`)
        .run(template.name, v, template.subject, template.text, template.html, Date.now());
      return v;
    }).immediate();
  }

  /** The given version, or the latest. */
  getTemplate(name: string, version?: number): TemplateRecord | undefined {
    const row = (
      version === undefined
        ? this.db.prepare(`SELECT * FROM templates WHERE name = ? ORDER BY version DESC LIMIT 1`).get(name)
        : this.db.prepare(`SELECT * FROM templates WHERE name = ? AND version = ?`).get(name, version)
    ) as TemplateRow | undefined;
    return row && toTemplate(row);
  }

  /** The latest version of every template. */
  listTemplates(): TemplateRecord[] {
    return (
      this.db
        .prepare(`SELECT t.* FROM templates t WHERE version = (SELECT max(version) FROM templates WHERE name = t.name) ORDER BY name`)
        .all() as TemplateRow[]
    ).map(toTemplate);
  }

  // ---- Webhooks and their outbox -----------------------------------------------------------

  addWebhook(url: string, secret: string, events: RecipientStatus[]): WebhookRecord {
    const now = Date.now();
    const { lastInsertRowid } = this.db
      .prepare(`INSERT INTO webhooks (url, secret, events, created_at) VALUES (?, ?, ?, ?)`)
      .run(url, secret, events.join(','), now);
    return { id: Number(lastInsertRowid), url, secret, events, createdAt: iso(now) };
  }

  listWebhooks(): WebhookRecord[] {
    return (this.db.prepare(`SELECT * FROM webhooks ORDER BY id`).all() as WebhookRow[]).map(toWebhook);
  }

  removeWebhook(id: number): boolean {
    return this.db.prepare(`DELETE FROM webhooks WHERE id = ?`).run(id).changes > 0;
  }

  /** Called inside the transaction that inserted event `eventId`: one outbox row per subscribed webhook. */
  enqueueWebhookEvent(eventId: number, event: Omit<EventRow, 'at'> & { domain: string; at: number }): void {
    if (!WEBHOOK_STATUSES.includes(event.status)) return;
    const subscribers = (this.stmt.subscribers.all() as { id: number; events: string }[]).filter((w) =>
      w.events.split(',').includes(event.status),
    );
    if (subscribers.length === 0) return;
    const payload = JSON.stringify(webhookPayload({ ...event, id: eventId, at: iso(event.at) }));
    for (const w of subscribers) this.stmt.insertOutbox.run(w.id, eventId, payload, event.at, event.at);
  }

  dueWebhookDeliveries(now: number, limit: number): OutboxEntry[] {
    return (
      this.db
        .prepare(
          `SELECT o.id, o.webhook_id, o.event_id, o.payload, o.attempts, w.url, w.secret
           FROM webhook_outbox o JOIN webhooks w ON w.id = o.webhook_id
           WHERE o.next_attempt_at <= ? ORDER BY o.next_attempt_at, o.id LIMIT ?`,
        )
        .all(now, limit) as { id: number; webhook_id: number; event_id: number; payload: string; attempts: number; url: string; secret: string }[]
    ).map((r) => ({ id: r.id, webhookId: r.webhook_id, eventId: r.event_id, payload: r.payload, attempts: r.attempts, url: r.url, secret: r.secret }));
  }

  /** A delivered row leaves the outbox; the backlog is what is left. */
  webhookDelivered(outboxId: number): void {
    this.db.prepare(`DELETE FROM webhook_outbox WHERE id = ?`).run(outboxId);
  }

  webhookFailed(outboxId: number, error: string, nextAttemptAt: number): void {
    this.db
      .prepare(`UPDATE webhook_outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? WHERE id = ?`)
      .run(error, nextAttemptAt, outboxId);
  }

  webhookBacklog(): { count: number; oldestAt: number | null } {
    const row = this.db.prepare(`SELECT count(*) AS n, min(created_at) AS oldest FROM webhook_outbox`).get() as { n: number; oldest: number | null };
    return { count: row.n, oldestAt: row.oldest };
  }

  /** Takes the write lock and lets go (an empty IMMEDIATE transaction): fails on a read-only or locked-up database. */
  checkWritable(): void {
    this.db.transaction(() => undefined).immediate();
  }

  // ---- Queries for the API -----------------------------------------------------------------

  /** Events in id order after `afterId` (the cursor), newest last. */
  queryEvents(query: EventQuery): ApiEvent[] {
    const where = ['id > ?'];
    const args: unknown[] = [query.afterId ?? 0];
    const filter = (clause: string, value: unknown) => {
      if (value === undefined) return;
      where.push(clause);
      args.push(value);
    };
    filter('at >= ?', query.since);
    filter('status = ?', query.status);
    filter('domain = ?', query.domain?.toLowerCase());
    filter('recipient = ? COLLATE NOCASE', query.recipient);
    filter('queue_id = ?', query.queueId);
    filter(BY_CREDENTIAL, query.credential);
    const order = query.newestFirst ? 'DESC' : 'ASC';
    const rows = this.db
      .prepare(`SELECT * FROM events WHERE ${where.join(' AND ')} ORDER BY id ${order} LIMIT ?`)
      .all(...args, query.limit) as EventDbRow[];
    return rows.map(toApiEvent);
  }

  getMessage(queueId: string): MessageRecord | undefined {
    const message = this.db.prepare(`SELECT * FROM messages WHERE queue_id = ?`).get(queueId) as MessageRow | undefined;
    if (!message) return undefined;
    const recipients = this.db.prepare(`SELECT * FROM recipients WHERE queue_id = ? ORDER BY id`).all(queueId) as RecipientRow[];
    return {
      queueId: message.queue_id,
      messageId: message.message_id,
      credential: message.credential,
      mailFrom: message.mail_from,
      size: message.size,
      receivedAt: iso(message.received_at),
      recipients: recipients.map((r) => ({
        address: r.address,
        status: r.status,
        attempts: r.attempts,
        nextAttemptAt: r.next_attempt_at == null ? null : iso(r.next_attempt_at),
        lastCode: r.last_code,
        lastResponse: r.last_response,
      })),
    };
  }

  /** Event counts per time bucket, recipient domain and status ("queued" = accepted). */
  eventBuckets(from: number, to: number, bucketMs: number, credential?: string): StatsBucket[] {
    const scope = credential === undefined ? '' : `AND ${BY_CREDENTIAL}`;
    const rows = this.db
      .prepare(
        `SELECT (at / CAST(? AS INTEGER)) * CAST(? AS INTEGER) AS start, domain, status, count(*) AS n FROM events
         WHERE at >= ? AND at < ? ${scope} GROUP BY start, domain, status ORDER BY start`,
      )
      .all(bucketMs, bucketMs, from, to, ...(credential === undefined ? [] : [credential])) as {
      start: number;
      domain: string;
      status: RecipientStatus;
      n: number;
    }[];
    return rows.map((r) => ({ start: iso(r.start), domain: r.domain, status: r.status, count: r.n }));
  }

  /** The latest failure (bounced, deferred or expired) per recipient domain in the window. */
  lastFailures(from: number, to: number, credential?: string): ApiEvent[] {
    const scope = credential === undefined ? '' : `AND ${BY_CREDENTIAL}`;
    const rows = this.db
      .prepare(
        `SELECT * FROM events WHERE id IN (
           SELECT max(id) FROM events WHERE status IN ('bounced','deferred','expired') AND at >= ? AND at < ? ${scope}
           GROUP BY domain)`,
      )
      .all(from, to, ...(credential === undefined ? [] : [credential])) as EventDbRow[];
    return rows.map(toApiEvent);
  }
}

/** The JSON a webhook receives for one event. */
export function webhookPayload(event: ApiEvent) {
  return {
    id: event.id,
    type: event.status,
    queue_id: event.queue_id,
    message_id: event.message_id,
    recipient: event.recipient,
    domain: event.domain,
    smtp_code: event.smtp_code,
    response: event.response,
    category: event.category,
    at: event.at,
  };
}

interface TemplateRow {
  name: string;
  version: number;
  subject: string;
  text: string | null;
  html: string | null;
  created_at: number;
}

interface WebhookRow {
  id: number;
  url: string;
  secret: string;
  events: string;
  created_at: number;
}

/** A messages row without its body. */
export interface MessageRow {
  queue_id: string;
  message_id: string;
  credential: string;
  mail_from: string;
  size: number;
  received_at: number;
}

interface RecipientRow {
  address: string;
  status: RecipientStatus;
  attempts: number;
  next_attempt_at: number | null;
  last_code: number | null;
  last_response: string | null;
}

const toTemplate = (r: TemplateRow): TemplateRecord => ({
  name: r.name,
  version: r.version,
  subject: r.subject,
  text: r.text,
  html: r.html,
  createdAt: iso(r.created_at),
});

const toWebhook = (r: WebhookRow): WebhookRecord => ({
  id: r.id,
  url: r.url,
  secret: r.secret,
  events: r.events.split(',') as RecipientStatus[],
  createdAt: iso(r.created_at),
});
