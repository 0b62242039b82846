/**
 * The event log, and the one way events are written (here, by enqueue and by recordAttempt):
 * with their webhook outbox rows in the same statement, so an announcement is never lost or
 * invented.
 */
import { WEBHOOK_STATUSES, type EventLog, type EventQuery, type EventRecord, type NewEvent, type StatsBucket } from '../storage.js';
import { domainOf } from '../../envelope/address.js';
import type { Db, Sql } from './db.js';
import { toEvent, type EventRow } from './rows.js';

const FAILURES = `status IN ('bounced', 'deferred', 'expired')`;

export type EventInsert = NewEvent & { at: number };

/** Inserts the events and, for each webhook subscribed to an event's status, its outbox row. */
export async function insertEvents(sql: Sql, events: EventInsert[]): Promise<void> {
  if (events.length === 0) return;
  const fanOut = events.some((e) => WEBHOOK_STATUSES.includes(e.status));
  const insert = `INSERT INTO events (queue_id, message_id, recipient, domain, status, smtp_code, response, category, credential, at, tls)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int[], $7::text[], $8::text[], $9::text[], $10::bigint[], $11::text[])
      AS i (queue_id, message_id, recipient, domain, status, smtp_code, response, category, credential, at, tls)`;
  const params: unknown[] = [
    events.map((e) => e.queueId),
    events.map((e) => e.messageId),
    events.map((e) => e.recipient),
    events.map((e) => domainOf(e.recipient)),
    events.map((e) => e.status),
    events.map((e) => e.smtpCode),
    events.map((e) => e.response),
    events.map((e) => e.category),
    events.map((e) => e.credential),
    events.map((e) => e.at),
    events.map((e) => (e.tls ? JSON.stringify(e.tls) : null)),
  ];
  if (!fanOut) {
    await sql.query(insert, params);
    return;
  }
  await sql.query(
    `WITH e AS (${insert} RETURNING id, status, at)
     INSERT INTO webhook_outbox (webhook_id, event_id, next_attempt_at, created_at)
     SELECT w.id, e.id, e.at, e.at FROM e JOIN webhooks w ON e.status = ANY (w.events)
     WHERE e.status = ANY ($12::text[])
     ORDER BY e.id, w.id`,
    [...params, WEBHOOK_STATUSES],
  );
}

export class PgEventLog implements EventLog {
  constructor(private readonly db: Db) {}

  async record(event: NewEvent): Promise<void> {
    await insertEvents(this.db.pool, [{ ...event, at: event.at ?? Date.now() }]);
  }

  async query(q: EventQuery): Promise<EventRecord[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    const filter = (clause: (param: string) => string, value: unknown) => {
      if (value === undefined) return;
      params.push(value);
      where.push(clause(`$${params.length}`));
    };
    filter((p) => `id > ${p}`, q.afterId);
    filter((p) => `at >= ${p}`, q.since);
    filter((p) => `status = ${p}`, q.status);
    filter((p) => `domain = ${p}`, q.domain?.toLowerCase());
    filter((p) => `lower(recipient) = lower(${p})`, q.recipient);
    filter((p) => `queue_id = ${p}`, q.queueId);
    filter((p) => `credential = ${p}`, q.credential);
    params.push(q.limit);
    const rows = await this.db.query<EventRow>(
      `SELECT * FROM events ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
       ORDER BY id ${q.newestFirst ? 'DESC' : 'ASC'} LIMIT $${params.length}`,
      params,
    );
    return rows.map(toEvent);
  }

  async buckets(from: number, to: number, bucketMs: number, credential?: string): Promise<StatsBucket[]> {
    const scope = credential === undefined ? '' : 'AND credential = $4';
    const rows = await this.db.query<{ start: number; domain: string; status: StatsBucket['status']; n: number }>(
      `SELECT at / $3::bigint * $3::bigint AS start, domain, status, count(*)::int AS n FROM events
       WHERE at >= $1 AND at < $2 ${scope}
       GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`,
      [from, to, bucketMs, ...(credential === undefined ? [] : [credential])],
    );
    return rows.map((r) => ({ start: r.start, domain: r.domain, status: r.status, count: r.n }));
  }

  async lastFailures(from: number, to: number, credential?: string): Promise<EventRecord[]> {
    const scope = credential === undefined ? '' : 'AND credential = $3';
    const rows = await this.db.query<EventRow>(
      `SELECT * FROM (
         SELECT DISTINCT ON (domain) * FROM events WHERE ${FAILURES} AND at >= $1 AND at < $2 ${scope} ORDER BY domain, id DESC
       ) latest ORDER BY id`,
      [from, to, ...(credential === undefined ? [] : [credential])],
    );
    return rows.map(toEvent);
  }

  async purge(before: number, limit: number): Promise<number> {
    // SKIP LOCKED: retention never waits on (or deadlocks with) the writers.
    return this.db.run(`DELETE FROM events WHERE id IN (SELECT id FROM events WHERE at < $1 ORDER BY at LIMIT $2 FOR UPDATE SKIP LOCKED)`, [
      before,
      limit,
    ]);
  }
}
