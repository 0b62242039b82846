/**
 * The SQLite side of abuse protection (issue 3), used by SqliteStore: credential limits, the
 * durable per-day and per-month recipient usage (written inside the enqueue transaction, so it
 * costs no extra fsync), and the idempotency keys of accepted submissions.
 */
import type Database from 'better-sqlite3';
import type { CredentialLimits, CredentialUsage, NewMessage } from './store.js';
import { usagePeriods } from './usage-periods.js';

interface LimitsRow {
  rate_count: number | null;
  rate_per_seconds: number | null;
  daily: number | null;
  monthly: number | null;
}

const NO_LIMITS: CredentialLimits = { rate: null, daily: null, monthly: null };

export class SqliteLimits {
  private readonly stmt;

  constructor(db: Database.Database) {
    this.stmt = {
      limits: db.prepare(`SELECT rate_count, rate_per_seconds, daily, monthly FROM credential_limits WHERE credential = ?`),
      saveLimits: db.prepare(
        `INSERT INTO credential_limits (credential, rate_count, rate_per_seconds, daily, monthly)
         VALUES (@credential, @rate_count, @rate_per_seconds, @daily, @monthly)
         ON CONFLICT (credential) DO UPDATE SET rate_count = excluded.rate_count,
           rate_per_seconds = excluded.rate_per_seconds, daily = excluded.daily, monthly = excluded.monthly`,
      ),
      usage: db.prepare(`SELECT period, recipients FROM credential_usage WHERE credential = ? AND period IN (?, ?)`),
      addUsage: db.prepare(
        `INSERT INTO credential_usage (credential, period, recipients) VALUES (?, ?, ?)
         ON CONFLICT (credential, period) DO UPDATE SET recipients = recipients + excluded.recipients`,
      ),
      findKey: db.prepare(`SELECT queue_id FROM idempotency_keys WHERE credential = ? AND key = ? AND created_at >= ?`),
      // A key may be re-used once its window has passed (the old row is replaced).
      saveKey: db.prepare(
        `INSERT OR REPLACE INTO idempotency_keys (credential, key, queue_id, created_at) VALUES (?, ?, ?, ?)`,
      ),
      pruneKeys: db.prepare(`DELETE FROM idempotency_keys WHERE created_at < ?`),
    };
  }

  get(name: string): CredentialLimits {
    const row = this.stmt.limits.get(name) as LimitsRow | undefined;
    if (!row) return NO_LIMITS;
    return {
      rate: row.rate_count != null ? { count: row.rate_count, perSeconds: row.rate_per_seconds ?? 1 } : null,
      daily: row.daily,
      monthly: row.monthly,
    };
  }

  set(name: string, change: Partial<CredentialLimits>): void {
    const limits = { ...this.get(name), ...change };
    this.stmt.saveLimits.run({
      credential: name,
      rate_count: limits.rate?.count ?? null,
      rate_per_seconds: limits.rate?.perSeconds ?? null,
      daily: limits.daily,
      monthly: limits.monthly,
    });
  }

  usage(name: string, at: number): CredentialUsage {
    const { day, month } = usagePeriods(at);
    const rows = this.stmt.usage.all(name, day, month) as { period: string; recipients: number }[];
    const of = (period: string) => rows.find((r) => r.period === period)?.recipients ?? 0;
    return { day: of(day), month: of(month) };
  }

  /** Called inside the enqueue transaction for each message. */
  recordEnqueued(message: NewMessage): void {
    const { day, month } = usagePeriods(message.receivedAt);
    const n = message.recipients.length;
    this.stmt.addUsage.run(message.credential, day, n);
    this.stmt.addUsage.run(message.credential, month, n);
    for (const key of message.idempotencyKeys ?? []) {
      this.stmt.saveKey.run(message.credential, key, message.queueId, message.receivedAt);
    }
  }

  findIdempotent(credential: string, key: string, since: number): string | undefined {
    return (this.stmt.findKey.get(credential, key, since) as { queue_id: string } | undefined)?.queue_id;
  }

  pruneIdempotencyKeys(before: number): void {
    this.stmt.pruneKeys.run(before);
  }
}
