/**
 * One group commit of submissions. Per message, atomically: its idempotency keys (a key
 * recorded within the window makes it a duplicate), its quota (a conditional increment of the
 * usage rows, so nodes sharing the database cannot overshoot), then the message, recipients
 * and `queued` events. A message refused by either check leaves nothing behind.
 *
 * Row locks are taken in one global order (the batch's keys sorted by credential and key in one
 * statement, then its usage rows sorted by credential and period in another) so concurrent
 * batches on several nodes wait for each other but never deadlock.
 */
import type pg from 'pg';
import { domainOf } from '../../envelope/address.js';
import { partsSize } from '../../envelope/header.js';
import { joinRun, pieceRuns } from '../pieces.js';
import type { EnqueueResult, NewMessage } from '../storage.js';
import { usagePeriods } from '../usage-periods.js';
import { NEXT_BATCH } from './batch.js';
import { insertEvents } from './events.js';

export const WORK_CHANNEL = 'relay_work';

/** Messages per multi-row INSERT: 9 parameters each, well under the protocol's 65535. */
const MESSAGE_ROWS_PER_INSERT = 1000;

type Outcome = EnqueueResult | typeof NEXT_BATCH;

interface KeyRow {
  credential: string;
  key: string;
  written: boolean;
  old_queue_id: string | null;
  old_created_at: number | null;
}

/** A key row this batch wrote, and how to put it back if its message is refused after all. */
interface WrittenKey {
  credential: string;
  key: string;
  old: { queueId: string; createdAt: number } | null;
}

export async function commitEnqueues(client: pg.PoolClient, messages: NewMessage[]): Promise<Outcome[]> {
  const results: (Outcome | undefined)[] = messages.map(() => undefined);
  const keysOf = messages.map((m) => [...new Set(m.idempotencyKeys ?? [])]);

  // A key twice in one batch cannot be decided by one statement: the later message waits for the next batch.
  const seen = new Set<string>();
  messages.forEach((m, i) => {
    const ids = keysOf[i]!.map((k) => `${m.credential}\0${k}`);
    if (ids.some((id) => seen.has(id))) results[i] = NEXT_BATCH;
    else ids.forEach((id) => seen.add(id));
  });

  const written = await recordKeys(client, messages, keysOf, results);
  const undo: WrittenKey[] = [];
  const refuse = (i: number, result: Outcome) => {
    results[i] = result;
    undo.push(...(written.get(i) ?? []));
  };
  await resolveDuplicates(client, messages, keysOf, written, refuse);
  await countUsage(client, messages, results, refuse);
  await restoreKeys(client, undo);

  const accepted = messages.filter((_, i) => results[i] === undefined);
  await insertMessages(client, accepted);
  // Delivered to listening nodes at commit (onWork in index.ts).
  if (accepted.length > 0) await client.query('SELECT pg_notify($1, $2)', [WORK_CHANNEL, '']);
  return results.map((r) => r ?? { status: 'queued' });
}

/**
 * Writes every key of the batch in one statement: inserted, or replacing a row recorded before
 * the message's window. A key left alone was recorded within the window. Returns, per message,
 * the rows it wrote with their previous values.
 */
async function recordKeys(
  client: pg.PoolClient,
  messages: NewMessage[],
  keysOf: string[][],
  results: (Outcome | undefined)[],
): Promise<Map<number, WrittenKey[]>> {
  const input: { i: number; credential: string; key: string; queueId: string; at: number; since: number | null }[] = [];
  messages.forEach((m, i) => {
    if (results[i] !== undefined) return;
    for (const key of keysOf[i]!) {
      input.push({ i, credential: m.credential, key, queueId: m.queueId, at: m.receivedAt, since: m.idempotencySince ?? null });
    }
  });
  const byMessage = new Map<number, WrittenKey[]>();
  if (input.length === 0) return byMessage;
  // No `since` means no window: a key recorded at any time is never replaced.
  const { rows } = await client.query<KeyRow>(
    `WITH input AS (
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[]) AS i (credential, key, queue_id, created_at, since)
     ), old AS (
       SELECT k.credential, k.key, k.queue_id, k.created_at FROM idempotency_keys k JOIN input USING (credential, key)
     ), written AS (
       INSERT INTO idempotency_keys AS k (credential, key, queue_id, created_at)
       SELECT credential, key, queue_id, created_at FROM input ORDER BY credential, key
       ON CONFLICT (credential, key) DO UPDATE SET queue_id = excluded.queue_id, created_at = excluded.created_at
       WHERE k.created_at < (SELECT i.since FROM input i WHERE i.credential = k.credential AND i.key = k.key)
       RETURNING k.credential, k.key
     )
     SELECT i.credential, i.key, w.key IS NOT NULL AS written, o.queue_id AS old_queue_id, o.created_at AS old_created_at
     FROM input i LEFT JOIN written w USING (credential, key) LEFT JOIN old o USING (credential, key)`,
    [
      input.map((k) => k.credential),
      input.map((k) => k.key),
      input.map((k) => k.queueId),
      input.map((k) => k.at),
      input.map((k) => k.since),
    ],
  );
  const outcome = new Map(rows.map((r) => [`${r.credential}\0${r.key}`, r]));
  for (const k of input) {
    const row = outcome.get(`${k.credential}\0${k.key}`)!;
    const list = byMessage.get(k.i) ?? [];
    byMessage.set(k.i, list);
    if (!row.written) continue;
    list.push({
      credential: k.credential,
      key: k.key,
      old: row.old_queue_id === null ? null : { queueId: row.old_queue_id, createdAt: row.old_created_at! },
    });
  }
  return byMessage;
}

/** A message with a key it could not write is a duplicate of the submission that holds the key. */
async function resolveDuplicates(
  client: pg.PoolClient,
  messages: NewMessage[],
  keysOf: string[][],
  written: Map<number, WrittenKey[]>,
  refuse: (i: number, result: Outcome) => void,
): Promise<void> {
  const duplicates: { i: number; key: string }[] = [];
  written.forEach((keys, i) => {
    const mine = new Set(keys.map((k) => k.key));
    const held = keysOf[i]!.find((k) => !mine.has(k));
    if (held !== undefined) duplicates.push({ i, key: held });
  });
  if (duplicates.length === 0) return;
  // A statement of its own: it sees a holder committed by another node while this batch waited on it.
  const { rows } = await client.query<{ credential: string; key: string; queue_id: string }>(
    `SELECT credential, key, queue_id FROM idempotency_keys k
     JOIN unnest($1::text[], $2::text[]) AS d (credential, key) USING (credential, key)`,
    [duplicates.map((d) => messages[d.i]!.credential), duplicates.map((d) => d.key)],
  );
  const holder = new Map(rows.map((r) => [`${r.credential}\0${r.key}`, r.queue_id]));
  for (const { i, key } of duplicates) {
    const queueId = holder.get(`${messages[i]!.credential}\0${key}`);
    // Pruned since it was seen: the next batch will find the key free.
    refuse(i, queueId === undefined ? NEXT_BATCH : { status: 'duplicate', queueId });
  }
}

/**
 * Counts each message's recipients in its credential's UTC day and month, refusing a message
 * its quota cannot take. The batch's usage rows are created if missing, locked and read in one
 * statement; the messages are then decided in order against the running totals, and the totals
 * written back: two statements per batch however many messages carry a quota.
 */
async function countUsage(
  client: pg.PoolClient,
  messages: NewMessage[],
  results: (Outcome | undefined)[],
  refuse: (i: number, result: EnqueueResult) => void,
): Promise<void> {
  const counted = messages.flatMap((m, i) => (results[i] === undefined ? [{ m, i, ...usagePeriods(m.receivedAt) }] : []));
  if (counted.length === 0) return;
  const id = (credential: string, period: string) => `${credential}\0${period}`;
  const rowIds = new Map<string, { credential: string; period: string }>();
  for (const { m, day, month } of counted) {
    for (const period of [day, month]) rowIds.set(id(m.credential, period), { credential: m.credential, period });
  }
  const keys = [...rowIds.values()];
  // The no-op update locks rows that exist; ORDER BY gives every batch the same lock order.
  const { rows } = await client.query<{ credential: string; period: string; recipients: number }>(
    `INSERT INTO credential_usage AS u (credential, period, recipients)
     SELECT credential, period, 0 FROM unnest($1::text[], $2::text[]) AS k (credential, period) ORDER BY credential, period
     ON CONFLICT (credential, period) DO UPDATE SET recipients = u.recipients
     RETURNING credential, period, recipients`,
    [keys.map((k) => k.credential), keys.map((k) => k.period)],
  );
  const used = new Map(rows.map((r) => [id(r.credential, r.period), r.recipients]));
  const before = new Map(used);
  for (const { m, i, day, month } of counted) {
    const n = m.recipients.length;
    const dayId = id(m.credential, day);
    const monthId = id(m.credential, month);
    const { daily, monthly } = m.quota ?? { daily: null, monthly: null };
    if (daily != null && used.get(dayId)! + n > daily) refuse(i, { status: 'over-quota', period: 'daily' });
    else if (monthly != null && used.get(monthId)! + n > monthly) refuse(i, { status: 'over-quota', period: 'monthly' });
    else {
      used.set(dayId, used.get(dayId)! + n);
      used.set(monthId, used.get(monthId)! + n);
    }
  }
  const changed = keys.filter((k) => used.get(id(k.credential, k.period)) !== before.get(id(k.credential, k.period)));
  if (changed.length === 0) return;
  await client.query(
    `UPDATE credential_usage u SET recipients = k.recipients
     FROM unnest($1::text[], $2::text[], $3::bigint[]) AS k (credential, period, recipients)
     WHERE u.credential = k.credential AND u.period = k.period`,
    [changed.map((k) => k.credential), changed.map((k) => k.period), changed.map((k) => used.get(id(k.credential, k.period)))],
  );
}

/** Puts back the key rows written for messages that were refused after all. */
async function restoreKeys(client: pg.PoolClient, undo: WrittenKey[]): Promise<void> {
  const inserted = undo.filter((k) => k.old === null);
  const replaced = undo.filter((k) => k.old !== null);
  if (inserted.length > 0) {
    await client.query(
      `DELETE FROM idempotency_keys k USING unnest($1::text[], $2::text[]) AS d (credential, key)
       WHERE k.credential = d.credential AND k.key = d.key`,
      [inserted.map((k) => k.credential), inserted.map((k) => k.key)],
    );
  }
  if (replaced.length > 0) {
    await client.query(
      `UPDATE idempotency_keys k SET queue_id = o.queue_id, created_at = o.created_at
       FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[]) AS o (credential, key, queue_id, created_at)
       WHERE k.credential = o.credential AND k.key = o.key`,
      [
        replaced.map((k) => k.credential),
        replaced.map((k) => k.key),
        replaced.map((k) => k.old!.queueId),
        replaced.map((k) => k.old!.createdAt),
      ],
    );
  }
}

async function insertMessages(client: pg.PoolClient, messages: NewMessage[]): Promise<void> {
  if (messages.length === 0) return;
  const runsOf = new Map(messages.map((m) => [m, pieceRuns(m.body)]));
  // Bodies as separate parameters: pg sends a Buffer parameter as binary, an array of them as escaped text.
  for (let start = 0; start < messages.length; start += MESSAGE_ROWS_PER_INSERT) {
    const chunk = messages.slice(start, start + MESSAGE_ROWS_PER_INSERT);
    const params: unknown[] = [];
    const values = chunk.map((m) => {
      const runs = runsOf.get(m)!;
      const body = runs.length === 1 ? joinRun(runs[0]!) : null;
      params.push(m.queueId, m.messageId, m.credential, m.mailFrom, partsSize(m.body), body, m.receivedAt, m.expiresAt, m.tags ?? []);
      const n = params.length;
      return `($${n - 8}, $${n - 7}, $${n - 6}, $${n - 5}, $${n - 4}, $${n - 3}, $${n - 2}, $${n - 1}, $${n}::text[])`;
    });
    await client.query(
      `INSERT INTO messages (queue_id, message_id, credential, mail_from, size, body, received_at, expires_at, tags) VALUES ${values.join(', ')}`,
      params,
    );
  }
  // One statement per piece, so no bind message holds more than a piece of a big body.
  for (const [m, runs] of runsOf) {
    if (runs.length === 1) continue;
    for (const [seq, run] of runs.entries()) {
      await client.query(`INSERT INTO message_pieces (queue_id, seq, data) VALUES ($1, $2, $3)`, [m.queueId, seq, joinRun(run)]);
    }
  }
  const recipients = messages.flatMap((m) => m.recipients.map((address) => ({ m, address })));
  if (recipients.length === 0) return;
  await client.query(
    `INSERT INTO recipients (queue_id, address, domain, status, next_attempt_at, updated_at)
     SELECT queue_id, address, domain, 'queued', at, at
     FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[]) AS r (queue_id, address, domain, at)`,
    [
      recipients.map((r) => r.m.queueId),
      recipients.map((r) => r.address),
      recipients.map((r) => domainOf(r.address)),
      recipients.map((r) => r.m.receivedAt),
    ],
  );
  await insertEvents(
    client,
    recipients.map(({ m, address }) => ({
      queueId: m.queueId,
      messageId: m.messageId,
      recipient: address,
      status: 'queued',
      smtpCode: null,
      response: null,
      category: null,
      credential: m.credential,
      at: m.receivedAt,
    })),
  );
}
