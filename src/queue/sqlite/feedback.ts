/** What the feedback stage stores in SQLite: the token key, report lookups, async events with their suppressions. */
import { randomBytes } from 'node:crypto';
import { domainOf, normaliseAddress } from '../../envelope/address.js';
import type { FeedbackStore, FeedbackTarget, NewEvent, NewSuppression } from '../storage.js';
import type { SqliteConnection } from './connection.js';

export class SqliteFeedback implements FeedbackStore {
  constructor(private readonly conn: SqliteConnection) {}

  async secret(): Promise<Buffer> {
    const db = this.conn.db;
    const read = () => db.prepare(`SELECT secret FROM feedback_secret WHERE id = 1`).pluck().get() as Buffer | undefined;
    const existing = read();
    if (existing) return existing;
    await this.conn.durableWrite(() =>
      db.prepare(`INSERT OR IGNORE INTO feedback_secret (id, secret, created_at) VALUES (1, ?, ?)`).run(randomBytes(32), Date.now()),
    );
    return read()!;
  }

  async recipient(queueId: string, recipientId: number): Promise<FeedbackTarget | undefined> {
    const row = this.conn.db
      .prepare(
        `SELECT m.queue_id, m.message_id, m.credential, r.address FROM recipients r JOIN messages m ON m.queue_id = r.queue_id
         WHERE r.id = ? AND r.queue_id = ?`,
      )
      .get(recipientId, queueId) as { queue_id: string; message_id: string; credential: string; address: string } | undefined;
    return row && { queueId: row.queue_id, messageId: row.message_id, credential: row.credential, recipient: row.address };
  }

  async messages(ref: { queueId?: string; messageId?: string }) {
    const rows = this.conn.db
      .prepare(
        `SELECT m.queue_id, m.message_id, m.credential, r.address FROM messages m JOIN recipients r ON r.queue_id = m.queue_id
         WHERE m.queue_id = ? OR m.message_id = ? ORDER BY m.queue_id, r.id`,
      )
      .all(ref.queueId ?? null, ref.messageId ?? null) as { queue_id: string; message_id: string; credential: string; address: string }[];
    const byQueue = new Map<string, Omit<FeedbackTarget, 'recipient'> & { recipients: string[] }>();
    for (const r of rows) {
      const entry = byQueue.get(r.queue_id) ?? { queueId: r.queue_id, messageId: r.message_id, credential: r.credential, recipients: [] };
      entry.recipients.push(r.address);
      byQueue.set(r.queue_id, entry);
    }
    return [...byQueue.values()];
  }

  record(event: NewEvent, suppression: NewSuppression | null): Promise<void> {
    const db = this.conn.db;
    return this.conn.durableWrite(() => {
      const at = event.at ?? Date.now();
      const { lastInsertRowid } = db
        .prepare(
          `INSERT INTO events (queue_id, message_id, credential, recipient, domain, status, smtp_code, response, category, at, phase)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'async')`,
        )
        .run(
          event.queueId,
          event.messageId,
          event.credential,
          event.recipient,
          domainOf(event.recipient),
          event.status,
          event.smtpCode,
          event.response,
          event.category,
          at,
        );
      db.prepare(
        `INSERT INTO webhook_outbox (webhook_id, event_id, next_attempt_at, created_at)
         SELECT id, ?, ?, ? FROM webhooks WHERE instr(',' || events || ',', ',' || ? || ',') > 0`,
      ).run(Number(lastInsertRowid), at, at, event.status);
      if (suppression) {
        db.prepare(`INSERT OR IGNORE INTO suppressions (address, credential, reason, created_at) VALUES (?, ?, ?, ?)`).run(
          normaliseAddress(suppression.address),
          suppression.credential ?? '',
          suppression.reason,
          at,
        );
      }
    });
  }

  async listUnsubscribe(credential: string): Promise<boolean> {
    const on = this.conn.db.prepare(`SELECT list_unsubscribe FROM credential_feedback WHERE credential = ?`).pluck().get(credential);
    return on === 1;
  }

  async setListUnsubscribe(credential: string, on: boolean): Promise<void> {
    await this.conn.durableWrite(() =>
      this.conn.db
        .prepare(
          `INSERT INTO credential_feedback (credential, list_unsubscribe) VALUES (?, ?)
           ON CONFLICT (credential) DO UPDATE SET list_unsubscribe = excluded.list_unsubscribe`,
        )
        .run(credential, on ? 1 : 0),
    );
  }
}
