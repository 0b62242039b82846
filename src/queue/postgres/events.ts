/**
 * The event log, and the one way events are written (here, by enqueue and by recordAttempt):
 * with their webhook outbox rows in the same statement, so an announcement is never lost or
 * invented.
 */
import {
  WEBHOOK_STATUSES,
  type EventLog,
  type EventQuery,
  type EventRecord,
  type EventWindow,
  type NewEvent,
  type StatsBucket,
  type TagCount,
} from '../storage.js';
import { domainOf } from '../../envelope/address.js';
import type { Db, Sql } from './db.js';
import { toEvent, type EventRow } from './rows.js';

const FAILURES = `status IN ('bounced', 'deferred', 'expired')`;

export type EventInsert = NewEvent & { at: number };

/** Inserts the events and, for each webhook subscribed to an event's status, its outbox row. */
export async function insertEvents(sql: Sql, events: EventInsert[]): Promise<void> {
  if (events.length === 0) return;
  const fanOut = events.some((e) => WEBHOOK_STATUSES.includes(e.status));
  // Each event carries its message's tags (none before the message exists, e.g. suppressed at RCPT).
  const insert = `INSERT INTO events (queue_id, message_id, recipient, domain, status, smtp_code, response, category, credential, at, tls, tags)
    SELECT i.*, coalesce((SELECT m.tags FROM messages m WHERE m.queue_id = i.queue_id), '{}')
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int[], $7::text[], $8::text[], $9::text[], $10::bigint[], $11::text[])
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

/** The extra conditions for one credential's and one tag's events, numbered from parameter $first. */
function scopeOf(first: number, credential?: string, tag?: string): { sql: string; params: string[] } {
  const clauses: string[] = [];
  const params: string[] = [];
  if (credential !== undefined) {
    params.push(credential);
    clauses.push(`AND credential = $${first + params.length - 1}`);
  }
  if (tag !== undefined) {
    params.push(tag);
    clauses.push(`AND $${first + params.length - 1} = ANY (tags)`);
  }
  return { sql: clauses.join(' '), params };
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
    filter((p) => `at < ${p}`, q.until);
    filter((p) => `status = ${p}`, q.status);
    filter((p) => `domain = ${p}`, q.domain?.toLowerCase());
    filter((p) => `lower(recipient) = lower(${p})`, q.recipient);
    filter((p) => `queue_id = ${p}`, q.queueId);
    filter((p) => `credential = ${p}`, q.credential);
    filter((p) => `${p} = ANY (tags)`, q.tag);
    params.push(q.limit);
    const rows = await this.db.query<EventRow>(
      `SELECT * FROM events ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
       ORDER BY id ${q.newestFirst ? 'DESC' : 'ASC'} LIMIT $${params.length}`,
      params,
    );
    return rows.map(toEvent);
  }

  async buckets(from: number, to: number, bucketMs: number, credential?: string, tag?: string): Promise<StatsBucket[]> {
    const scope = scopeOf(4, credential, tag);
    const rows = await this.db.query<{ start: number; domain: string; status: StatsBucket['status']; n: number }>(
      `SELECT at / $3::bigint * $3::bigint AS start, domain, status, count(*)::int AS n FROM events
       WHERE at >= $1 AND at < $2 ${scope.sql}
       GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`,
      [from, to, bucketMs, ...scope.params],
    );
    return rows.map((r) => ({ start: r.start, domain: r.domain, status: r.status, count: r.n }));
  }

  async lastFailures(from: number, to: number, credential?: string, tag?: string): Promise<EventRecord[]> {
    const scope = scopeOf(3, credential, tag);
    const rows = await this.db.query<EventRow>(
      `SELECT * FROM (
         SELECT DISTINCT ON (domain) * FROM events WHERE ${FAILURES} AND at >= $1 AND at < $2 ${scope.sql} ORDER BY domain, id DESC
       ) latest ORDER BY id`,
      [from, to, ...scope.params],
    );
    return rows.map(toEvent);
  }

  async tagCounts(from: number, to: number, credential?: string): Promise<TagCount[]> {
    const scope = scopeOf(3, credential);
    const rows = await this.db.query<{ tag: string; status: TagCount['status']; n: number }>(
      `SELECT t.tag, status, count(*)::int AS n FROM events, unnest(tags) AS t (tag)
       WHERE at >= $1 AND at < $2 ${scope.sql} GROUP BY 1, 2 ORDER BY 1, 2`,
      [from, to, ...scope.params],
    );
    return rows.map((r) => ({ tag: r.tag, status: r.status, count: r.n }));
  }

  async *pages(window: EventWindow, pageSize: number): AsyncIterable<EventRecord[]> {
    // The window's id range is read once; pages then walk the primary key from a cursor.
    const scope = scopeOf(3, window.credential);
    const [bounds] = await this.db.query<{ lo: number | null; hi: number | null }>(
      `SELECT min(id) AS lo, max(id) AS hi FROM events WHERE at >= $1 AND at < $2 ${scope.sql}`,
      [window.from, window.to, ...scope.params],
    );
    if (!bounds || bounds.lo === null || bounds.hi === null) return;
    const pageScope = scopeOf(6, window.credential);
    for (let after = bounds.lo - 1; ;) {
      const rows = await this.db.query<EventRow>(
        `SELECT * FROM events WHERE id > $1 AND id <= $2 AND at >= $3 AND at < $4 ${pageScope.sql} ORDER BY id LIMIT $5`,
        [after, bounds.hi, window.from, window.to, pageSize, ...pageScope.params],
      );
      if (rows.length > 0) yield rows.map(toEvent);
      if (rows.length < pageSize) return;
      after = rows.at(-1)!.id;
    }
  }

  async purge(before: number, limit: number): Promise<number> {
    // SKIP LOCKED: retention never waits on (or deadlocks with) the writers. The batch is
    // MATERIALIZED: a LIMIT ... SKIP LOCKED subquery that the plan rescans can pick other rows
    // each time and delete more than `limit`.
    return this.db.run(
      `WITH doomed AS MATERIALIZED (SELECT id FROM events WHERE at < $1 ORDER BY at LIMIT $2 FOR UPDATE SKIP LOCKED)
       DELETE FROM events WHERE id IN (SELECT id FROM doomed)`,
      [before, limit],
    );
  }
}
