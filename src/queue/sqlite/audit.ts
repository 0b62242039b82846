/** The audit log: an append-only, hash-chained table; the chain's rules are src/audit's. */
import type { AuditEntry, AuditLog, AuditQuery, NewAuditEntry } from '../storage.js';
import type { SqliteConnection } from './connection.js';

interface AuditRow {
  seq: number;
  at: number;
  actor: string;
  action: string;
  target: string;
  change: string;
  prev_hash: string;
  hash: string;
}

const toEntry = (r: AuditRow): AuditEntry => ({
  seq: r.seq,
  at: r.at,
  actor: r.actor,
  action: r.action,
  target: r.target,
  change: r.change,
  prevHash: r.prev_hash,
  hash: r.hash,
});

export class SqliteAudit implements AuditLog {
  constructor(private readonly conn: SqliteConnection) {}

  append(entry: NewAuditEntry, hash: (prevHash: string, row: NewAuditEntry & { seq: number }) => string): Promise<AuditEntry> {
    const db = this.conn.db;
    // The write transaction is IMMEDIATE: another process (the CLI beside `relay serve`) waits for
    // this one, so the row read as the last is still the last when this one is inserted.
    return this.conn.durableWrite(() => {
      const last = db.prepare(`SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1`).get() as
        { seq: number; hash: string } | undefined;
      const seq = (last?.seq ?? 0) + 1;
      const prevHash = last?.hash ?? '';
      const row = { ...entry, seq, prevHash, hash: hash(prevHash, { ...entry, seq }) };
      db.prepare(`INSERT INTO audit_log (seq, at, actor, action, target, change, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`).run(
        seq,
        entry.at,
        entry.actor,
        entry.action,
        entry.target,
        entry.change,
        prevHash,
        row.hash,
      );
      return row;
    });
  }

  async list(query: AuditQuery): Promise<AuditEntry[]> {
    const where: string[] = ['seq > ?'];
    const params: unknown[] = [query.afterSeq ?? 0];
    if (query.since !== undefined) (where.push('at >= ?'), params.push(query.since));
    if (query.actor !== undefined) (where.push('actor = ?'), params.push(query.actor));
    const rows = this.conn.db
      .prepare(`SELECT * FROM audit_log WHERE ${where.join(' AND ')} ORDER BY seq LIMIT ?`)
      .all(...params, query.limit) as AuditRow[];
    return rows.map(toEntry);
  }
}
