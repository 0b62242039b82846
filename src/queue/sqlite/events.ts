/**
 * The event log in SQLite. Every event is written with one outbox row per webhook subscribed to
 * its status, in the same transaction, so a webhook announcement is never lost or invented.
 */
import type Database from 'better-sqlite3';
import { domainOf } from '../../envelope/address.js';
import type { EventLog, EventQuery, EventRecord, EventWindow, NewEvent, StatsBucket, TagCount } from '../storage.js';
import type { SqliteConnection } from './connection.js';
import { type EventRow, toEvent } from './rows.js';

const HAS_TAG = `EXISTS (SELECT 1 FROM json_each(events.tags) WHERE value = ?)`;

/** The extra conditions (and their arguments) for one credential's and one tag's events. */
function scopeOf(credential?: string, tag?: string): { sql: string; args: string[] } {
  const clauses: string[] = [];
  const args: string[] = [];
  if (credential !== undefined) {
    clauses.push('credential = ?');
    args.push(credential);
  }
  if (tag !== undefined) {
    clauses.push(HAS_TAG);
    args.push(tag);
  }
  return { sql: clauses.map((c) => `AND ${c}`).join(' '), args };
}

export class SqliteEvents implements EventLog {
  private readonly insertEvent: Database.Statement;
  private readonly fanOut: Database.Statement;

  constructor(private readonly conn: SqliteConnection) {
    const db = conn.db;
    this.insertEvent = db.prepare(
      `INSERT INTO events (queue_id, message_id, credential, recipient, domain, status, smtp_code, response, category, tls, at, tags)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, (SELECT tags FROM messages WHERE queue_id = ?))`,
    );
    // Webhooks list their statuses comma-separated; 'queued' is the API's own answer, never posted.
    this.fanOut = db.prepare(
      `INSERT INTO webhook_outbox (webhook_id, event_id, next_attempt_at, created_at)
       SELECT id, ?, ?, ? FROM webhooks WHERE ? <> 'queued' AND instr(',' || events || ',', ',' || ? || ',') > 0`,
    );
  }

  /** Inserts inside the caller's transaction. */
  insert(event: NewEvent): void {
    const at = event.at ?? Date.now();
    const { lastInsertRowid } = this.insertEvent.run(
      event.queueId,
      event.messageId,
      event.credential,
      event.recipient,
      domainOf(event.recipient),
      event.status,
      event.smtpCode,
      event.response,
      event.category,
      event.tls ? JSON.stringify(event.tls) : null,
      at,
      event.queueId,
    );
    this.fanOut.run(Number(lastInsertRowid), at, at, event.status, event.status);
  }

  record(event: NewEvent): Promise<void> {
    return this.conn.lazyWrite(() => this.insert(event));
  }

  async query(query: EventQuery): Promise<EventRecord[]> {
    const where = ['id > ?'];
    const args: unknown[] = [query.afterId ?? 0];
    const filter = (clause: string, value: unknown) => {
      if (value === undefined) return;
      where.push(clause);
      args.push(value);
    };
    filter('at >= ?', query.since);
    filter('at < ?', query.until);
    filter('status = ?', query.status);
    filter('domain = ?', query.domain?.toLowerCase());
    filter('recipient = ? COLLATE NOCASE', query.recipient);
    filter('queue_id = ?', query.queueId);
    filter('credential = ?', query.credential);
    filter(HAS_TAG, query.tag);
    const order = query.newestFirst ? 'DESC' : 'ASC';
    const rows = this.conn.db
      .prepare(`SELECT * FROM events WHERE ${where.join(' AND ')} ORDER BY id ${order} LIMIT ?`)
      .all(...args, query.limit) as EventRow[];
    return rows.map(toEvent);
  }

  async buckets(from: number, to: number, bucketMs: number, credential?: string, tag?: string): Promise<StatsBucket[]> {
    const { sql, args } = scopeOf(credential, tag);
    const rows = this.conn.db
      .prepare(
        `SELECT (at / CAST(? AS INTEGER)) * CAST(? AS INTEGER) AS start, domain, status, count(*) AS n FROM events
         WHERE at >= ? AND at < ? ${sql} GROUP BY start, domain, status ORDER BY start`,
      )
      .all(bucketMs, bucketMs, from, to, ...args) as {
      start: number;
      domain: string;
      status: StatsBucket['status'];
      n: number;
    }[];
    return rows.map((r) => ({ start: r.start, domain: r.domain, status: r.status, count: r.n }));
  }

  async lastFailures(from: number, to: number, credential?: string, tag?: string): Promise<EventRecord[]> {
    const { sql, args } = scopeOf(credential, tag);
    const rows = this.conn.db
      .prepare(
        `SELECT * FROM events WHERE id IN (
           SELECT max(id) FROM events WHERE status IN ('bounced','deferred','expired') AND at >= ? AND at < ? ${sql}
           GROUP BY domain) ORDER BY id`,
      )
      .all(from, to, ...args) as EventRow[];
    return rows.map(toEvent);
  }

  async tagCounts(from: number, to: number, credential?: string): Promise<TagCount[]> {
    const { sql, args } = scopeOf(credential);
    const rows = this.conn.db
      .prepare(
        `SELECT t.value AS tag, status, count(*) AS n FROM events, json_each(events.tags) t
         WHERE tags IS NOT NULL AND at >= ? AND at < ? ${sql} GROUP BY t.value, status ORDER BY t.value, status`,
      )
      .all(from, to, ...args) as { tag: string; status: TagCount['status']; n: number }[];
    return rows.map((r) => ({ tag: r.tag, status: r.status, count: r.n }));
  }

  async *pages(window: EventWindow, pageSize: number): AsyncIterable<EventRecord[]> {
    const { sql, args } = scopeOf(window.credential);
    // The window's id range is read once (by the at index); pages then walk the primary key
    // (+at keeps the planner off the at index, which would sort the whole window for each page).
    const bounds = this.conn.db
      .prepare(`SELECT min(id) AS lo, max(id) AS hi FROM events WHERE at >= ? AND at < ? ${sql}`)
      .get(window.from, window.to, ...args) as { lo: number | null; hi: number | null };
    if (bounds.lo === null || bounds.hi === null) return;
    const page = this.conn.db.prepare(`SELECT * FROM events WHERE id > ? AND id <= ? AND +at >= ? AND +at < ? ${sql} ORDER BY id LIMIT ?`);
    for (let after = bounds.lo - 1; ;) {
      const rows = page.all(after, bounds.hi, window.from, window.to, ...args, pageSize) as EventRow[];
      if (rows.length > 0) yield rows.map(toEvent);
      if (rows.length < pageSize) return;
      after = rows.at(-1)!.id;
    }
  }

  purge(before: number, limit: number): Promise<number> {
    return this.conn.lazyWrite(() => {
      const ids = this.conn.db.prepare(`SELECT id FROM events WHERE at < ? ORDER BY at LIMIT ?`).pluck().all(before, limit) as number[];
      if (ids.length === 0) return 0;
      const list = ids.join(',');
      this.conn.db.exec(`DELETE FROM webhook_outbox WHERE event_id IN (${list}); DELETE FROM events WHERE id IN (${list})`);
      return ids.length;
    });
  }
}
