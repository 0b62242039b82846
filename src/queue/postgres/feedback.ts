/** What the feedback stage stores in PostgreSQL: the token key, report lookups, async events with their suppressions. */
import { randomBytes } from 'node:crypto';
import { domainOf, normaliseAddress } from '../../envelope/address.js';
import { WEBHOOK_STATUSES, type FeedbackStore, type FeedbackTarget, type NewEvent, type NewSuppression } from '../storage.js';
import type { Db } from './db.js';

interface TargetRow {
  queue_id: string;
  message_id: string;
  credential: string;
  address: string;
}

export class PgFeedback implements FeedbackStore {
  constructor(private readonly db: Db) {}

  async secret(): Promise<Buffer> {
    // The first node to ask makes the key; every other one reads the same row.
    await this.db.run(`INSERT INTO feedback_secret (secret, created_at) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING`, [
      randomBytes(32),
      Date.now(),
    ]);
    const [row] = await this.db.query<{ secret: Buffer }>(`SELECT secret FROM feedback_secret`);
    return row!.secret;
  }

  async recipient(queueId: string, recipientId: number): Promise<FeedbackTarget | undefined> {
    const [row] = await this.db.query<TargetRow>(
      `SELECT m.queue_id, m.message_id, m.credential, r.address FROM recipients r JOIN messages m ON m.queue_id = r.queue_id
       WHERE r.id = $1 AND r.queue_id = $2`,
      [recipientId, queueId],
    );
    return row && { queueId: row.queue_id, messageId: row.message_id, credential: row.credential, recipient: row.address };
  }

  async messages(ref: { queueId?: string; messageId?: string }) {
    const rows = await this.db.query<TargetRow>(
      `SELECT m.queue_id, m.message_id, m.credential, r.address FROM messages m JOIN recipients r ON r.queue_id = m.queue_id
       WHERE m.queue_id = $1 OR m.message_id = $2 ORDER BY m.queue_id, r.id`,
      [ref.queueId ?? null, ref.messageId ?? null],
    );
    const byQueue = new Map<string, Omit<FeedbackTarget, 'recipient'> & { recipients: string[] }>();
    for (const r of rows) {
      const entry = byQueue.get(r.queue_id) ?? { queueId: r.queue_id, messageId: r.message_id, credential: r.credential, recipients: [] };
      entry.recipients.push(r.address);
      byQueue.set(r.queue_id, entry);
    }
    return [...byQueue.values()];
  }

  async record(event: NewEvent, suppression: NewSuppression | null): Promise<void> {
    const at = event.at ?? Date.now();
    await this.db.transaction(async (client) => {
      await client.query(
        `WITH e AS (
           INSERT INTO events (queue_id, message_id, credential, recipient, domain, status, smtp_code, response, category, at, phase)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'async') RETURNING id, status, at)
         INSERT INTO webhook_outbox (webhook_id, event_id, next_attempt_at, created_at)
         SELECT w.id, e.id, e.at, e.at FROM e JOIN webhooks w ON e.status = ANY (w.events) WHERE e.status = ANY ($11::text[])`,
        [
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
          WEBHOOK_STATUSES,
        ],
      );
      if (suppression) {
        await client.query(
          `INSERT INTO suppressions (address, credential, reason, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`,
          [normaliseAddress(suppression.address), suppression.credential ?? '', suppression.reason, at],
        );
      }
    }, 'on');
  }

  async listUnsubscribe(credential: string): Promise<boolean> {
    const [row] = await this.db.query<{ list_unsubscribe: boolean }>(
      `SELECT list_unsubscribe FROM credential_feedback WHERE credential = $1`,
      [credential],
    );
    return row?.list_unsubscribe === true;
  }

  async setListUnsubscribe(credential: string, on: boolean): Promise<void> {
    await this.db.run(
      `INSERT INTO credential_feedback (credential, list_unsubscribe) VALUES ($1, $2)
       ON CONFLICT (credential) DO UPDATE SET list_unsubscribe = excluded.list_unsubscribe`,
      [credential, on],
    );
  }
}
