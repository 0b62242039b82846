/** Credential limits, their usage, rate buckets, login failures and idempotency keys in SQLite. */
import {
  failuresByKey,
  type CredentialLimits,
  type CredentialUsage,
  type IdempotencyStore,
  type LimitStore,
  type LoginFailures,
} from '../storage.js';
import { usagePeriods } from '../usage-periods.js';
import type { SqliteConnection } from './connection.js';

interface LimitsRow {
  rate_count: number | null;
  rate_per_seconds: number | null;
  daily: number | null;
  monthly: number | null;
}

export class SqliteLimits implements LimitStore, IdempotencyStore {
  private readonly stmt;

  constructor(private readonly conn: SqliteConnection) {
    const db = conn.db;
    this.stmt = {
      limits: db.prepare(`SELECT rate_count, rate_per_seconds, daily, monthly FROM credential_limits WHERE credential = ?`),
      saveLimits: db.prepare(
        `INSERT INTO credential_limits (credential, rate_count, rate_per_seconds, daily, monthly) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (credential) DO UPDATE SET rate_count = excluded.rate_count,
           rate_per_seconds = excluded.rate_per_seconds, daily = excluded.daily, monthly = excluded.monthly`,
      ),
      usage: db.prepare(`SELECT period, recipients FROM credential_usage WHERE credential = ? AND period IN (?, ?)`),
      bucket: db.prepare(`SELECT tokens, updated_at FROM rate_buckets WHERE credential = ?`),
      saveBucket: db.prepare(
        `INSERT INTO rate_buckets (credential, tokens, updated_at) VALUES (?, ?, ?)
         ON CONFLICT (credential) DO UPDATE SET tokens = excluded.tokens, updated_at = excluded.updated_at`,
      ),
      addFailure: db.prepare(`INSERT INTO login_failures (key, at) VALUES (?, ?)`),
      failures: db.prepare(
        `SELECT key, count(*) AS count, max(at) AS lastAt FROM login_failures
         WHERE key IN (SELECT value FROM json_each(?)) AND at >= ? GROUP BY key`,
      ),
      clearFailures: db.prepare(`DELETE FROM login_failures WHERE key = ?`),
      findKey: db.prepare(`SELECT queue_id FROM idempotency_keys WHERE credential = ? AND key = ? AND created_at >= ?`).pluck(),
    };
  }

  async get(credential: string): Promise<CredentialLimits> {
    const row = this.stmt.limits.get(credential) as LimitsRow | undefined;
    if (!row) return { rate: null, daily: null, monthly: null };
    return {
      rate: row.rate_count != null ? { count: row.rate_count, perSeconds: row.rate_per_seconds ?? 1 } : null,
      daily: row.daily,
      monthly: row.monthly,
    };
  }

  async set(credential: string, change: Partial<CredentialLimits>): Promise<void> {
    const limits = { ...(await this.get(credential)), ...change };
    this.conn.writeNow(() =>
      this.stmt.saveLimits.run(credential, limits.rate?.count ?? null, limits.rate?.perSeconds ?? null, limits.daily, limits.monthly),
    );
  }

  async usage(credential: string, at: number): Promise<CredentialUsage> {
    const { day, month } = usagePeriods(at);
    const rows = this.stmt.usage.all(credential, day, month) as { period: string; recipients: number }[];
    const of = (period: string) => rows.find((r) => r.period === period)?.recipients ?? 0;
    return { day: of(day), month: of(month) };
  }

  async takeTokens(credential: string, rate: { count: number; perSeconds: number }, n: number, now: number): Promise<boolean> {
    return this.conn.writeNow(() => {
      const row = this.stmt.bucket.get(credential) as { tokens: number; updated_at: number } | undefined;
      const refill = row ? ((now - row.updated_at) * rate.count) / (rate.perSeconds * 1000) : rate.count;
      const tokens = Math.min(rate.count, (row?.tokens ?? 0) + Math.max(0, refill));
      if (tokens < n) return false;
      this.stmt.saveBucket.run(credential, tokens - n, now);
      return true;
    });
  }

  async recordLoginFailure(key: string, at: number, since: number): Promise<number> {
    this.conn.writeNow(() => this.stmt.addFailure.run(key, at));
    return (await this.loginFailures([key], since))[0]!.count;
  }

  async loginFailures(keys: readonly string[], since: number): Promise<LoginFailures[]> {
    return failuresByKey(
      keys,
      this.stmt.failures.all(JSON.stringify(keys), since) as { key: string; count: number; lastAt: number | null }[],
    );
  }

  async clearLoginFailures(key: string): Promise<void> {
    this.conn.writeNow(() => this.stmt.clearFailures.run(key));
  }

  async prune(before: number): Promise<void> {
    this.conn.writeNow(() => {
      this.conn.db.prepare(`DELETE FROM login_failures WHERE at < ?`).run(before);
      this.conn.db.prepare(`DELETE FROM idempotency_keys WHERE created_at < ?`).run(before);
    });
  }

  async find(credential: string, key: string, since: number): Promise<string | undefined> {
    return this.stmt.findKey.get(credential, key, since) as string | undefined;
  }
}
