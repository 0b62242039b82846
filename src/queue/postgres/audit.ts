/** The audit log: an append-only, hash-chained table; the chain's rules are src/audit's. */
import type { AuditEntry, AuditLog, AuditQuery, NewAuditEntry } from '../storage.js';
import type { Db } from './db.js';

/** pg_advisory_xact_lock key for appends: "RELAYAUD" as a big-endian int8. */
const AUDIT_LOCK = '5928228328057951556';

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

export class PgAudit implements AuditLog {
  constructor(private readonly db: Db) {}

  append(entry: NewAuditEntry, hash: (prevHash: string, row: NewAuditEntry & { seq: number }) => string): Promise<AuditEntry> {
    // Every node's appends queue on one lock, so the row read as the last is still the last at the insert.
    return this.db.transaction(async (client) => {
      await client.query('SELECT pg_advisory_xact_lock($1)', [AUDIT_LOCK]);
      const { rows } = await client.query<{ seq: number; hash: string }>(`SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1`);
      const seq = (rows[0]?.seq ?? 0) + 1;
      const prevHash = rows[0]?.hash ?? '';
      const row = { ...entry, seq, prevHash, hash: hash(prevHash, { ...entry, seq }) };
      await client.query(
        `INSERT INTO audit_log (seq, at, actor, action, target, change, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
        [seq, entry.at, entry.actor, entry.action, entry.target, entry.change, prevHash, row.hash],
      );
      return row;
    }, 'on');
  }

  async list(query: AuditQuery): Promise<AuditEntry[]> {
    const params: unknown[] = [query.afterSeq ?? 0, query.limit];
    const where = ['seq > $1'];
    if (query.since !== undefined) where.push(`at >= $${params.push(query.since)}`);
    if (query.actor !== undefined) where.push(`actor = $${params.push(query.actor)}`);
    const rows = await this.db.query<AuditRow>(`SELECT * FROM audit_log WHERE ${where.join(' AND ')} ORDER BY seq LIMIT $2`, params);
    return rows.map(toEntry);
  }
}
