/**
 * One group commit of finished delivery attempts: recipient rows, their events (with webhook
 * outbox rows), the suppressions the bounces stage decided on, and the bodies of messages left
 * with nothing to deliver. Committed without waiting for the WAL flush: an outcome lost in a
 * crash means one more delivery, not a lost message.
 */
import type pg from 'pg';
import type { AttemptRecord } from '../storage.js';
import { insertEvents, type EventInsert } from './events.js';
import { normaliseAddress } from '../../envelope/address.js';
import { PENDING } from './rows.js';

export async function commitAttempts(client: pg.PoolClient, attempts: AttemptRecord[], now: number): Promise<void> {
  const updates: {
    id: number;
    status: string;
    next: number | null;
    code: number | null;
    response: string | null;
    category: string | null;
  }[] = [];
  const events: EventInsert[] = [];
  const finished = new Set<string>();
  for (const { job, outcomes } of attempts) {
    const addressOf = new Map(job.recipients.map((r) => [r.id, r.address]));
    for (const o of outcomes) {
      const address = addressOf.get(o.recipientId);
      if (address === undefined) continue;
      const deferred = o.status === 'deferred';
      updates.push({
        id: o.recipientId,
        status: o.status,
        next: deferred ? (o.nextAttemptAt ?? now) : null,
        code: o.smtpCode ?? null,
        response: o.response ?? null,
        category: o.category ?? null,
      });
      events.push({
        queueId: job.queueId,
        messageId: job.messageId,
        recipient: address,
        status: o.status,
        smtpCode: o.smtpCode ?? null,
        response: o.response ?? null,
        category: o.category ?? null,
        tls: o.tls ?? null,
        credential: job.credential,
        at: now,
      });
      if (!deferred) finished.add(job.queueId);
    }
  }
  updates.sort((a, b) => a.id - b.id);
  if (updates.length > 0) {
    await client.query(
      `UPDATE recipients r SET status = o.status, attempts = r.attempts + 1, next_attempt_at = o.next,
         lease_until = NULL, lease_owner = NULL, last_code = o.code, last_response = o.response, category = o.category, updated_at = $7
       FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::int[], $5::text[], $6::text[]) AS o (id, status, next, code, response, category)
       WHERE r.id = o.id`,
      [
        updates.map((u) => u.id),
        updates.map((u) => u.status),
        updates.map((u) => u.next),
        updates.map((u) => u.code),
        updates.map((u) => u.response),
        updates.map((u) => u.category),
        now,
      ],
    );
  }
  await insertEvents(client, events);

  const suppressions = attempts.flatMap((a) => a.suppressions);
  if (suppressions.length > 0) {
    await client.query(
      `INSERT INTO suppressions (address, credential, reason, created_at)
       SELECT address, credential, reason, $4 FROM unnest($1::text[], $2::text[], $3::text[]) AS s (address, credential, reason)
       ORDER BY address, credential
       ON CONFLICT (address, credential) DO NOTHING`,
      [
        suppressions.map((s) => normaliseAddress(s.address)),
        suppressions.map((s) => s.credential ?? ''),
        suppressions.map((s) => s.reason),
        now,
      ],
    );
  }

  if (finished.size === 0) return;
  const queueIds = [...finished].sort();
  // Two nodes finishing the last recipients of one message at once: the lock makes the later
  // one see the other's outcome (its next statement takes a new snapshot) and drop the body.
  await client.query(`SELECT 1 FROM messages WHERE queue_id = ANY ($1::text[]) ORDER BY queue_id FOR NO KEY UPDATE`, [queueIds]);
  await client.query(
    `WITH finished AS (
       SELECT m.queue_id FROM messages m
       WHERE m.queue_id = ANY ($1::text[]) AND NOT EXISTS (SELECT 1 FROM recipients r WHERE r.queue_id = m.queue_id AND r.${PENDING})
     ), whole AS (
       UPDATE messages m SET body = NULL FROM finished f WHERE m.queue_id = f.queue_id AND m.body IS NOT NULL
     )
     DELETE FROM message_pieces p USING finished f WHERE p.queue_id = f.queue_id`,
    [queueIds],
  );
}
