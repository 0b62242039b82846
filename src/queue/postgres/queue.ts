/**
 * The message queue. Submissions and attempt outcomes are group-committed (batch.ts); claims
 * use FOR UPDATE SKIP LOCKED, so nodes sharing the database never claim the same recipient and
 * never wait for each other's claims.
 */
import type { Logger } from 'pino';
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
import { storedParts } from '../pieces.js';
import { EVENT_STATUSES } from '../storage.js';
import { commitAttempts } from './attempts.js';
import { GroupCommit } from './batch.js';
import { storageError, type Db } from './db.js';
import { commitEnqueues, WORK_CHANNEL } from './enqueue.js';
import { PENDING, toMessage, type ClaimedRow, type MessageRow, type RecipientRow } from './rows.js';

/** How far the claim looks down the due index for `limit` distinct jobs. */
const CLAIM_SCAN_PER_JOB = 16;
const DUE = (now: string, alias = '') =>
  `${alias}${PENDING} AND ${alias}next_attempt_at <= ${now} AND (${alias}lease_until IS NULL OR ${alias}lease_until <= ${now})`;

export class PgMessageQueue implements MessageQueue {
  private readonly enqueues: GroupCommit<NewMessage, EnqueueResult>;
  private readonly attempts: GroupCommit<AttemptRecord, undefined>;

  constructor(
    private readonly db: Db,
    logger: Logger | undefined,
  ) {
    this.enqueues = new GroupCommit(
      async (messages) => {
        try {
          // The 250 waits for this commit: durable whatever the server's synchronous_commit default.
          return await db.transaction((client) => commitEnqueues(client, messages), 'on');
        } catch (err) {
          logger?.error({ err, messages: messages.length }, 'enqueue batch failed');
          throw storageError(err);
        }
      },
      { maxItems: 500, weight: (m) => partsSize(m.body), maxWeight: 64 * 1024 * 1024 },
    );
    this.attempts = new GroupCommit(
      async (records) => {
        await db.transaction((client) => commitAttempts(client, records, Date.now()), 'off');
        return records.map(() => undefined);
      },
      { maxItems: 500 },
    );
  }

  enqueue(message: NewMessage): Promise<EnqueueResult> {
    return this.enqueues.submit(message);
  }

  recordAttempt(attempt: AttemptRecord): Promise<void> {
    return this.attempts.submit(attempt);
  }

  /** Waits for every submitted enqueue and attempt to be committed or rejected. */
  async flush(): Promise<void> {
    await Promise.all([this.enqueues.idle(), this.attempts.idle()]);
  }

  async claimDue(now: number, limit: number, lease: Lease): Promise<DeliveryJob[]> {
    if (limit <= 0) return [];
    // The first `limit` jobs (message and domain) in due order, then every due recipient of each
    // that no other claim holds. A lease lost in a crash runs out anyway: no need to wait for the flush.
    const rows = await this.db.transaction(async (client) => {
      const result = await client.query<ClaimedRow>(
        `WITH jobs AS (
           SELECT queue_id, domain, min(next_attempt_at) AS due FROM (
             SELECT queue_id, domain, next_attempt_at FROM recipients WHERE ${DUE('$1')}
             ORDER BY next_attempt_at LIMIT $3
           ) s GROUP BY queue_id, domain ORDER BY due LIMIT $2
         ), claimed AS (
           SELECT r.id FROM recipients r JOIN jobs j ON j.queue_id = r.queue_id AND j.domain = r.domain
           WHERE ${DUE('$1', 'r.')}
           ORDER BY r.id FOR UPDATE OF r SKIP LOCKED
         )
         UPDATE recipients r SET lease_until = $4, lease_owner = $5
         FROM claimed c, messages m
         WHERE r.id = c.id AND m.queue_id = r.queue_id
         RETURNING r.id, r.queue_id, r.domain, r.address, r.attempts, r.next_attempt_at,
           m.message_id, m.credential, m.mail_from, m.received_at, m.expires_at`,
        [now, limit, limit * CLAIM_SCAN_PER_JOB, now + lease.ms, lease.owner],
      );
      return result.rows;
    }, 'off');
    const jobs = new Map<string, { job: DeliveryJob; due: number }>();
    for (const row of rows.sort((a, b) => a.id - b.id)) {
      const key = `${row.queue_id}\0${row.domain}`;
      let entry = jobs.get(key);
      if (!entry) {
        entry = {
          due: row.next_attempt_at,
          job: {
            queueId: row.queue_id,
            messageId: row.message_id,
            credential: row.credential,
            mailFrom: row.mail_from,
            domain: row.domain,
            recipients: [],
            receivedAt: row.received_at,
            expiresAt: row.expires_at,
          },
        };
        jobs.set(key, entry);
      }
      entry.due = Math.min(entry.due, row.next_attempt_at);
      entry.job.recipients.push({ id: row.id, address: row.address, attempts: row.attempts });
    }
    return [...jobs.values()].sort((a, b) => a.due - b.due).map((e) => e.job);
  }

  async renewLeases(owner: string, until: number): Promise<void> {
    await this.db.run(`UPDATE recipients SET lease_until = $2 WHERE lease_owner = $1 AND lease_until IS NOT NULL`, [owner, until]);
  }

  releaseLeases(owner: string): Promise<number> {
    return this.db.run(`UPDATE recipients SET lease_until = NULL, lease_owner = NULL WHERE lease_owner = $1 AND lease_until IS NOT NULL`, [
      owner,
    ]);
  }

  async body(queueId: string): Promise<MessageParts | undefined> {
    const [row] = await this.db.query<{ body: Buffer | null; size: number }>(`SELECT body, size FROM messages WHERE queue_id = $1`, [
      queueId,
    ]);
    if (!row) return undefined;
    if (row.body) return storedParts([row.body]);
    // One query per piece, so the client never holds the whole body twice (as a result row and as
    // Buffers). A message deleted meanwhile comes up short, and counts as deleted.
    const pieces: Buffer[] = [];
    let size = 0;
    for (let seq = 0; size < row.size; seq++) {
      const [piece] = await this.db.query<{ data: Buffer }>(`SELECT data FROM message_pieces WHERE queue_id = $1 AND seq = $2`, [
        queueId,
        seq,
      ]);
      if (!piece) return undefined;
      pieces.push(piece.data);
      size += piece.data.length;
    }
    return storedParts(pieces);
  }

  async nextDueAt(): Promise<number | null> {
    // The first unleased due time (the head of the due index) and the first lease to run out
    // (the small leased index): no walk over the backlog.
    const [row] = await this.db.query<{ t: number | null }>(
      `SELECT least(
         (SELECT next_attempt_at FROM recipients WHERE ${PENDING} AND lease_until IS NULL ORDER BY next_attempt_at LIMIT 1),
         (SELECT min(greatest(next_attempt_at, lease_until)) FROM recipients WHERE lease_until IS NOT NULL AND ${PENDING})
       ) AS t`,
    );
    return row?.t ?? null;
  }

  async pending(): Promise<QueuedMessage[]> {
    const messages = await this.db.query<MessageRow>(
      `SELECT queue_id, message_id, credential, mail_from, size, received_at, expires_at FROM messages
       WHERE queue_id IN (SELECT queue_id FROM recipients WHERE ${PENDING})
       ORDER BY received_at, queue_id`,
    );
    if (messages.length === 0) return [];
    const recipients = await this.db.query<RecipientRow>(`SELECT * FROM recipients WHERE queue_id = ANY ($1::text[]) ORDER BY id`, [
      messages.map((m) => m.queue_id),
    ]);
    const byMessage = new Map<string, RecipientRow[]>();
    for (const r of recipients) {
      const list = byMessage.get(r.queue_id) ?? [];
      byMessage.set(r.queue_id, list);
      list.push(r);
    }
    return messages.map((m) => toMessage(m, byMessage.get(m.queue_id) ?? []));
  }

  async message(queueId: string): Promise<QueuedMessage | undefined> {
    const [message] = await this.db.query<MessageRow>(
      `SELECT queue_id, message_id, credential, mail_from, size, received_at, expires_at FROM messages WHERE queue_id = $1`,
      [queueId],
    );
    if (!message) return undefined;
    const recipients = await this.db.query<RecipientRow>(`SELECT * FROM recipients WHERE queue_id = $1 ORDER BY id`, [queueId]);
    return toMessage(message, recipients);
  }

  async retry(queueId: string): Promise<boolean> {
    // A recipient under lease is being delivered right now: its outcome decides, not the retry.
    const [row] = await this.db.query<{ found: boolean }>(
      `WITH retried AS (
         UPDATE recipients SET next_attempt_at = $2 WHERE queue_id = $1 AND ${PENDING} AND lease_until IS NULL RETURNING 1
       )
       SELECT EXISTS (SELECT 1 FROM messages WHERE queue_id = $1) AS found, pg_notify($3, '')`,
      [queueId, Date.now(), WORK_CHANNEL],
    );
    return row!.found;
  }

  async delete(queueId: string): Promise<boolean> {
    return (await this.db.run(`DELETE FROM messages WHERE queue_id = $1`, [queueId])) > 0;
  }

  async stats(): Promise<Stats> {
    const byStatus = Object.fromEntries(EVENT_STATUSES.map((s) => [s, 0])) as Record<RecipientStatus, number>;
    const byDomain: Stats['byDomain'] = {};
    const counts = await this.db.query<{ domain: string; status: RecipientStatus; n: number }>(
      `SELECT domain, status, count(*)::int AS n FROM recipients GROUP BY domain, status
       UNION ALL
       SELECT domain, status, count(*)::int AS n FROM events WHERE status IN ('suppressed', 'complained', 'unsubscribed')
       GROUP BY domain, status`,
    );
    for (const { domain, status, n } of counts) {
      byStatus[status] += n;
      const perDomain = (byDomain[domain] ??= {});
      perDomain[status] = (perDomain[status] ?? 0) + n;
    }
    const [queue] = await this.db.query<{ messages: number; recipients: number; oldest: number | null }>(
      `SELECT count(DISTINCT r.queue_id)::int AS messages, count(*)::int AS recipients, min(m.received_at) AS oldest
       FROM recipients r JOIN messages m ON m.queue_id = r.queue_id WHERE r.${PENDING}`,
    );
    return {
      byStatus,
      byDomain,
      queue: { messages: queue!.messages, recipientsPending: queue!.recipients, oldestReceivedAt: queue!.oldest },
    };
  }

  purgeFinished(before: number, limit: number): Promise<number> {
    return this.db.run(
      // MATERIALIZED, as in events.purge(): a rescanned LIMIT ... SKIP LOCKED batch could exceed `limit`.
      `WITH doomed AS MATERIALIZED (
         SELECT m.queue_id FROM messages m
         WHERE m.received_at < $1 AND NOT EXISTS (SELECT 1 FROM recipients r WHERE r.queue_id = m.queue_id AND r.${PENDING})
         ORDER BY m.received_at LIMIT $2 FOR UPDATE SKIP LOCKED)
       DELETE FROM messages WHERE queue_id IN (SELECT queue_id FROM doomed)`,
      [before, limit],
    );
  }
}
