/** Webhooks and their outbox. Outbox rows are written with their events (events.ts). */
import type { Lease, OutboxEntry, RecipientStatus, WebhookRecord, WebhookStore } from '../storage.js';
import type { Db } from './db.js';
import { toEvent, toWebhook, type OutboxRow, type WebhookRow } from './rows.js';

export class PgWebhooks implements WebhookStore {
  constructor(private readonly db: Db) {}

  async add(url: string, secret: string, events: RecipientStatus[]): Promise<WebhookRecord> {
    const [row] = await this.db.query<WebhookRow>(
      `INSERT INTO webhooks (url, secret, events, created_at) VALUES ($1, $2, $3, $4) RETURNING *`,
      [url, secret, events, Date.now()],
    );
    return toWebhook(row!);
  }

  async list(): Promise<WebhookRecord[]> {
    return (await this.db.query<WebhookRow>(`SELECT * FROM webhooks ORDER BY id`)).map(toWebhook);
  }

  async remove(id: number): Promise<boolean> {
    return (await this.db.run(`DELETE FROM webhooks WHERE id = $1`, [id])) > 0;
  }

  async claimDue(now: number, limit: number, lease: Lease): Promise<OutboxEntry[]> {
    // Claiming moves the entry's next attempt past the lease: another node will not take it
    // meanwhile, and if this one dies it comes due again once the lease has run out.
    const rows = await this.db.query<OutboxRow>(
      `WITH due AS (
         SELECT id FROM webhook_outbox WHERE next_attempt_at <= $1 ORDER BY next_attempt_at, id LIMIT $2 FOR UPDATE SKIP LOCKED
       )
       UPDATE webhook_outbox o SET next_attempt_at = $3
       FROM due, webhooks w, events e
       WHERE o.id = due.id AND w.id = o.webhook_id AND e.id = o.event_id
       RETURNING o.id AS outbox_id, o.webhook_id, o.attempts, w.url, w.secret,
         e.id, e.queue_id, e.message_id, e.credential, e.recipient, e.domain, e.status, e.smtp_code, e.response, e.category, e.tls, e.at, e.tags, e.phase`,
      [now, limit, now + lease.ms],
    );
    return rows
      .sort((a, b) => a.outbox_id - b.outbox_id)
      .map((r) => ({ id: r.outbox_id, webhookId: r.webhook_id, url: r.url, secret: r.secret, event: toEvent(r), attempts: r.attempts }));
  }

  async delivered(outboxId: number): Promise<void> {
    await this.db.run(`DELETE FROM webhook_outbox WHERE id = $1`, [outboxId]);
  }

  async failed(outboxId: number, error: string, nextAttemptAt: number): Promise<void> {
    await this.db.run(`UPDATE webhook_outbox SET attempts = attempts + 1, last_error = $2, next_attempt_at = $3 WHERE id = $1`, [
      outboxId,
      error,
      nextAttemptAt,
    ]);
  }

  async backlog(): Promise<{ count: number; oldestAt: number | null }> {
    const [row] = await this.db.query<{ n: number; oldest: number | null }>(
      `SELECT count(*)::int AS n, min(created_at) AS oldest FROM webhook_outbox`,
    );
    return { count: row!.n, oldestAt: row!.oldest };
  }
}
