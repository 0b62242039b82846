/**
 * The message queue in SQLite: messages with a row per recipient. An enqueue commits the message,
 * its recipients and their `queued` events, the credential's usage and the idempotency keys in one
 * durable transaction shared with every other enqueue of the same tick. SQLite has one writer, so
 * the checks made inside that transaction (a key already used, a quota reached) are atomic.
 */
import { domainOf } from '../../envelope/address.js';
import { partsSize, type MessageParts } from '../../envelope/header.js';
import type {
  AttemptRecord,
  DeliveryJob,
  EnqueueResult,
  Lease,
  MessageQueue,
  NewMessage,
  QueuedMessage,
  RecipientStatus,
  Stats,
} from '../storage.js';
import { joinRun, PIECE_BYTES, pieceRuns, storedParts } from '../pieces.js';
import { EVENT_STATUSES } from '../storage.js';
import { usagePeriods } from '../usage-periods.js';
import type { SqliteConnection } from './connection.js';
import type { SqliteEvents } from './events.js';
import type { SqliteSuppressions } from './tables.js';
import { type MessageRow, type RecipientRow, toRecipient } from './rows.js';

const PENDING = `status IN ('queued','deferred')`;

export class SqliteQueue implements MessageQueue {
  private readonly stmt;
  /** Where a piece's chunks are joined for binding; SQLite copies a bound blob, so one buffer serves every piece. */
  private readonly scratch = Buffer.allocUnsafeSlow(PIECE_BYTES);

  constructor(
    private readonly conn: SqliteConnection,
    private readonly events: SqliteEvents,
    private readonly suppressions: SqliteSuppressions,
  ) {
    const db = conn.db;
    this.stmt = {
      insertMessage: db.prepare(
        `INSERT INTO messages (queue_id, message_id, credential, mail_from, size, body, received_at, expires_at, tags)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      insertPiece: db.prepare(`INSERT INTO message_pieces (queue_id, seq, data) VALUES (?, ?, ?)`),
      insertRecipient: db.prepare(
        `INSERT INTO recipients (queue_id, address, domain, status, next_attempt_at, updated_at) VALUES (?, ?, ?, 'queued', ?, ?)`,
      ),
      findKey: db.prepare(`SELECT queue_id FROM idempotency_keys WHERE credential = ? AND key = ? AND created_at >= ?`).pluck(),
      // A key may be used again once its window has passed (the old row is replaced).
      saveKey: db.prepare(`INSERT OR REPLACE INTO idempotency_keys (credential, key, queue_id, created_at) VALUES (?, ?, ?, ?)`),
      usage: db.prepare(`SELECT recipients FROM credential_usage WHERE credential = ? AND period = ?`).pluck(),
      addUsage: db.prepare(
        `INSERT INTO credential_usage (credential, period, recipients) VALUES (?, ?, ?)
         ON CONFLICT (credential, period) DO UPDATE SET recipients = recipients + excluded.recipients`,
      ),
      dueJobs: db.prepare(
        `SELECT queue_id, domain FROM recipients
         WHERE ${PENDING} AND next_attempt_at <= ? AND (lease_until IS NULL OR lease_until <= ?) ORDER BY next_attempt_at`,
      ),
      dueInJob: db.prepare(
        `SELECT r.id, r.address, r.attempts, m.message_id, m.credential, m.mail_from, m.received_at, m.expires_at
         FROM recipients r JOIN messages m ON m.queue_id = r.queue_id
         WHERE r.queue_id = ? AND r.domain = ? AND r.${PENDING} AND r.next_attempt_at <= ?
           AND (r.lease_until IS NULL OR r.lease_until <= ?)
         ORDER BY r.id`,
      ),
      lease: db.prepare(`UPDATE recipients SET lease_until = ?, lease_owner = ? WHERE id = ?`),
      outcome: db.prepare(
        `UPDATE recipients SET status = ?, attempts = attempts + 1, next_attempt_at = ?, lease_until = NULL, lease_owner = NULL,
           last_code = ?, last_response = ?, category = ?, updated_at = ?
         WHERE id = ?`,
      ),
      pendingCount: db.prepare(`SELECT count(*) FROM recipients WHERE queue_id = ? AND ${PENDING}`).pluck(),
      dropBody: db.prepare(`UPDATE messages SET body = NULL WHERE queue_id = ?`),
      dropPieces: db.prepare(`DELETE FROM message_pieces WHERE queue_id = ?`),
      body: db.prepare(`SELECT body FROM messages WHERE queue_id = ?`).pluck(),
      pieces: db.prepare(`SELECT data FROM message_pieces WHERE queue_id = ? ORDER BY seq`).pluck(),
      // The earliest unleased due time (first entry of the due index) and the earliest a leased
      // recipient comes free (the small leased index): no walk over the whole backlog.
      nextDue: db
        .prepare(
          `SELECT min(coalesce(free, leased), coalesce(leased, free)) FROM (SELECT
             (SELECT next_attempt_at FROM recipients WHERE ${PENDING} AND lease_until IS NULL ORDER BY next_attempt_at LIMIT 1) AS free,
             (SELECT min(max(next_attempt_at, lease_until)) FROM recipients WHERE lease_until IS NOT NULL AND ${PENDING}) AS leased)`,
        )
        .pluck(),
      renew: db.prepare(`UPDATE recipients SET lease_until = ? WHERE lease_owner = ? AND lease_until IS NOT NULL`),
      release: db.prepare(`UPDATE recipients SET lease_until = NULL, lease_owner = NULL WHERE lease_owner = ? AND lease_until IS NOT NULL`),
    };
  }

  enqueue(message: NewMessage): Promise<EnqueueResult> {
    return this.conn.durableWrite(() => this.insert(message));
  }

  private insert(message: NewMessage): EnqueueResult {
    const { credential, queueId, receivedAt } = message;
    for (const key of message.idempotencyKeys ?? []) {
      const original = this.stmt.findKey.get(credential, key, message.idempotencySince ?? 0) as string | undefined;
      if (original !== undefined) return { status: 'duplicate', queueId: original };
    }
    const { day, month } = usagePeriods(receivedAt);
    const n = message.recipients.length;
    for (const [period, cap, name] of [
      [day, message.quota?.daily, 'daily'],
      [month, message.quota?.monthly, 'monthly'],
    ] as const) {
      if (cap != null && ((this.stmt.usage.get(credential, period) as number | undefined) ?? 0) + n > cap) {
        return { status: 'over-quota', period: name };
      }
    }
    this.stmt.addUsage.run(credential, day, n);
    this.stmt.addUsage.run(credential, month, n);
    for (const key of message.idempotencyKeys ?? []) this.stmt.saveKey.run(credential, key, queueId, receivedAt);
    const runs = pieceRuns(message.body);
    this.stmt.insertMessage.run(
      queueId,
      message.messageId,
      credential,
      message.mailFrom,
      partsSize(message.body),
      runs.length === 1 ? this.joined(runs[0]!) : null,
      receivedAt,
      message.expiresAt,
      message.tags?.length ? JSON.stringify(message.tags) : null,
    );
    if (runs.length > 1) runs.forEach((run, seq) => this.stmt.insertPiece.run(queueId, seq, this.joined(run)));
    for (const recipient of message.recipients) {
      this.stmt.insertRecipient.run(queueId, recipient, domainOf(recipient), receivedAt, receivedAt);
      this.events.insert({
        queueId,
        messageId: message.messageId,
        credential,
        recipient,
        status: 'queued',
        smtpCode: null,
        response: null,
        category: null,
        at: receivedAt,
      });
    }
    return { status: 'queued' };
  }

  async claimDue(now: number, limit: number, lease: Lease): Promise<DeliveryJob[]> {
    type Row = Pick<RecipientRow, 'id' | 'address' | 'attempts'> &
      Pick<MessageRow, 'message_id' | 'credential' | 'mail_from' | 'received_at' | 'expires_at'>;
    // Polled all the time: when nothing is due that costs a read, never the write lock.
    if (this.stmt.dueJobs.get(now, now) === undefined) return [];
    return this.conn.writeNow(() => {
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
        const first = rows[0];
        if (!first) continue;
        for (const row of rows) this.stmt.lease.run(now + lease.ms, lease.owner, row.id);
        jobs.push({
          queueId,
          messageId: first.message_id,
          credential: first.credential,
          mailFrom: first.mail_from,
          domain,
          recipients: rows.map((r) => ({ id: r.id, address: r.address, attempts: r.attempts })),
          receivedAt: first.received_at,
          expiresAt: first.expires_at,
        });
      }
      return jobs;
    });
  }

  async renewLeases(owner: string, until: number): Promise<void> {
    this.conn.writeNow(() => this.stmt.renew.run(until, owner));
  }

  async releaseLeases(owner: string): Promise<number> {
    return this.conn.writeNow(() => this.stmt.release.run(owner).changes);
  }

  /** A run of chunks as one Buffer to bind, valid until the next call. */
  private joined(run: Buffer[]): Buffer {
    if (run.length === 1) return run[0]!;
    const length = run.reduce((n, chunk) => n + chunk.length, 0);
    if (length > this.scratch.length) return joinRun(run);
    let at = 0;
    for (const chunk of run) at += chunk.copy(this.scratch, at);
    return this.scratch.subarray(0, length);
  }

  async body(queueId: string): Promise<MessageParts | undefined> {
    const whole = this.stmt.body.get(queueId) as Buffer | null | undefined;
    return storedParts(whole ? [whole] : (this.stmt.pieces.all(queueId) as Buffer[]));
  }

  recordAttempt(attempt: AttemptRecord): Promise<void> {
    return this.conn.lazyWrite(() => this.applyAttempt(attempt, Date.now()));
  }

  private applyAttempt({ job, outcomes, suppressions }: AttemptRecord, now: number): void {
    const addressOf = new Map(job.recipients.map((r) => [r.id, r.address]));
    for (const o of outcomes) {
      const recipient = addressOf.get(o.recipientId);
      if (recipient === undefined) continue;
      const next = o.status === 'deferred' ? (o.nextAttemptAt ?? now) : null;
      this.stmt.outcome.run(o.status, next, o.smtpCode ?? null, o.response ?? null, o.category ?? null, now, o.recipientId);
      this.events.insert({
        queueId: job.queueId,
        messageId: job.messageId,
        credential: job.credential,
        recipient,
        status: o.status,
        smtpCode: o.smtpCode ?? null,
        response: o.response ?? null,
        category: o.category ?? null,
        tls: o.tls ?? null,
        at: now,
      });
    }
    for (const s of suppressions) this.suppressions.insert(s, now);
    if (this.stmt.pendingCount.get(job.queueId) === 0) {
      this.stmt.dropBody.run(job.queueId);
      this.stmt.dropPieces.run(job.queueId);
    }
  }

  async nextDueAt(): Promise<number | null> {
    return (this.stmt.nextDue.get() as number | null) ?? null;
  }

  async pending(): Promise<QueuedMessage[]> {
    const messages = this.conn.db
      .prepare(
        `SELECT * FROM messages WHERE queue_id IN (SELECT DISTINCT queue_id FROM recipients WHERE ${PENDING}) ORDER BY received_at, queue_id`,
      )
      .all() as MessageRow[];
    return messages.map((m) => this.withRecipients(m));
  }

  async message(queueId: string): Promise<QueuedMessage | undefined> {
    const row = this.conn.db.prepare(`SELECT * FROM messages WHERE queue_id = ?`).get(queueId) as MessageRow | undefined;
    return row && this.withRecipients(row);
  }

  private withRecipients(m: MessageRow): QueuedMessage {
    const recipients = this.conn.db.prepare(`SELECT * FROM recipients WHERE queue_id = ? ORDER BY id`).all(m.queue_id) as RecipientRow[];
    return {
      queueId: m.queue_id,
      messageId: m.message_id,
      credential: m.credential,
      mailFrom: m.mail_from,
      size: m.size,
      receivedAt: m.received_at,
      recipients: recipients.map(toRecipient),
    };
  }

  async retry(queueId: string): Promise<boolean> {
    return this.conn.writeNow(() => {
      if (!this.conn.db.prepare(`SELECT 1 FROM messages WHERE queue_id = ?`).get(queueId)) return false;
      this.conn.db
        .prepare(
          `UPDATE recipients SET next_attempt_at = ? WHERE queue_id = ? AND ${PENDING} AND (lease_until IS NULL OR lease_until <= ?)`,
        )
        .run(Date.now(), queueId, Date.now());
      return true;
    });
  }

  async delete(queueId: string): Promise<boolean> {
    return this.conn.writeNow(() => this.conn.db.prepare(`DELETE FROM messages WHERE queue_id = ?`).run(queueId).changes > 0);
  }

  async stats(): Promise<Stats> {
    const db = this.conn.db;
    const byStatus = Object.fromEntries(EVENT_STATUSES.map((s) => [s, 0])) as Record<RecipientStatus, number>;
    const byDomain: Stats['byDomain'] = {};
    const rows = db
      .prepare(
        `SELECT domain, status, count(*) AS n FROM recipients GROUP BY domain, status
         UNION ALL
         SELECT domain, status, count(*) AS n FROM events WHERE status IN ('suppressed','complained','unsubscribed') GROUP BY domain, status`,
      )
      .all() as { domain: string; status: RecipientStatus; n: number }[];
    for (const { domain, status, n } of rows) {
      byStatus[status] += n;
      const counts = (byDomain[domain] ??= {});
      counts[status] = (counts[status] ?? 0) + n;
    }
    const queue = db
      .prepare(
        `SELECT count(DISTINCT r.queue_id) AS messages, count(*) AS recipients, min(m.received_at) AS oldest
         FROM recipients r JOIN messages m ON m.queue_id = r.queue_id WHERE r.${PENDING}`,
      )
      .get() as { messages: number; recipients: number; oldest: number | null };
    return { byStatus, byDomain, queue: { messages: queue.messages, recipientsPending: queue.recipients, oldestReceivedAt: queue.oldest } };
  }

  purgeFinished(before: number, limit: number): Promise<number> {
    return this.conn.lazyWrite(
      () =>
        this.conn.db
          .prepare(
            `DELETE FROM messages WHERE queue_id IN (
               SELECT queue_id FROM messages m WHERE received_at < ?
                 AND NOT EXISTS (SELECT 1 FROM recipients r WHERE r.queue_id = m.queue_id AND r.${PENDING})
               ORDER BY received_at LIMIT ?)`,
          )
          .run(before, limit).changes,
    );
  }
}
