/**
 * Abuse protection shared by every node on the database: credential limits and usage, the
 * token bucket of each credential's rate, login failures, and idempotency keys.
 */
import {
  failuresByKey,
  type CredentialLimits,
  type CredentialUsage,
  type IdempotencyStore,
  type LimitStore,
  type LoginFailures,
} from '../storage.js';
import { usagePeriods } from '../usage-periods.js';
import type { Db } from './db.js';
import type { LimitsRow } from './rows.js';

export class PgLimits implements LimitStore {
  constructor(private readonly db: Db) {}

  async get(credential: string): Promise<CredentialLimits> {
    const [row] = await this.db.query<LimitsRow>(
      `SELECT rate_count, rate_per_seconds, daily, monthly FROM credential_limits WHERE credential = $1`,
      [credential],
    );
    if (!row) return { rate: null, daily: null, monthly: null };
    return {
      rate: row.rate_count !== null ? { count: row.rate_count, perSeconds: row.rate_per_seconds ?? 1 } : null,
      daily: row.daily,
      monthly: row.monthly,
    };
  }

  async set(credential: string, limits: Partial<CredentialLimits>): Promise<void> {
    // One upsert that writes only the fields given: a concurrent change to another field stays.
    const values: Record<string, unknown> = {};
    if (limits.rate !== undefined) {
      values.rate_count = limits.rate?.count ?? null;
      values.rate_per_seconds = limits.rate?.perSeconds ?? null;
    }
    if (limits.daily !== undefined) values.daily = limits.daily;
    if (limits.monthly !== undefined) values.monthly = limits.monthly;
    const columns = Object.keys(values);
    const update = columns.length ? `DO UPDATE SET ${columns.map((c) => `${c} = excluded.${c}`).join(', ')}` : 'DO NOTHING';
    await this.db.run(
      `INSERT INTO credential_limits (credential${columns.map((c) => `, ${c}`).join('')})
       VALUES ($1${columns.map((_, i) => `, $${i + 2}`).join('')})
       ON CONFLICT (credential) ${update}`,
      [credential, ...Object.values(values)],
    );
  }

  async usage(credential: string, at: number): Promise<CredentialUsage> {
    const { day, month } = usagePeriods(at);
    const rows = await this.db.query<{ period: string; recipients: number }>(
      `SELECT period, recipients FROM credential_usage WHERE credential = $1 AND period IN ($2, $3)`,
      [credential, day, month],
    );
    const of = (period: string) => rows.find((r) => r.period === period)?.recipients ?? 0;
    return { day: of(day), month: of(month) };
  }

  async takeTokens(credential: string, rate: { count: number; perSeconds: number }, n: number, now: number): Promise<boolean> {
    // One statement, so nodes taking at once cannot both spend the last tokens. The bucket starts
    // full; refill is computed from the time since the last take (never backwards, should clocks
    // of nodes disagree). A refused take writes nothing: the refill is a function of time.
    const [count, perSeconds, take, at] = ['$2::float8', '$3::float8', '$4::float8', '$5::bigint'];
    const refilled = `least(${count}, b.tokens + greatest(0, ${at} - b.updated_at) * ${count} / (${perSeconds} * 1000))`;
    const rows = await this.db.query(
      `INSERT INTO rate_buckets AS b (credential, tokens, updated_at)
       SELECT $1, ${count} - ${take}, ${at} WHERE ${take} <= ${count}
       ON CONFLICT (credential) DO UPDATE SET tokens = ${refilled} - ${take}, updated_at = greatest(b.updated_at, ${at})
       WHERE ${refilled} >= ${take}
       RETURNING 1`,
      [credential, rate.count, rate.perSeconds, n, now],
    );
    return rows.length > 0;
  }

  async recordLoginFailure(key: string, at: number, since: number): Promise<number> {
    // The count's snapshot does not include the row inserted by the same statement.
    const [row] = await this.db.query<{ n: number }>(
      `WITH added AS (INSERT INTO login_failures (key, at) VALUES ($1, $2))
       SELECT count(*)::int + CASE WHEN $2::bigint >= $3::bigint THEN 1 ELSE 0 END AS n FROM login_failures WHERE key = $1 AND at >= $3`,
      [key, at, since],
    );
    return row!.n;
  }

  async loginFailures(keys: readonly string[], since: number): Promise<LoginFailures[]> {
    const rows = await this.db.query<{ key: string; count: number; lastAt: number | null }>(
      `SELECT key, count(*)::int AS "count", max(at) AS "lastAt" FROM login_failures WHERE key = ANY($1::text[]) AND at >= $2 GROUP BY key`,
      [keys, since],
    );
    return failuresByKey(keys, rows);
  }

  async clearLoginFailures(key: string): Promise<void> {
    await this.db.run(`DELETE FROM login_failures WHERE key = $1`, [key]);
  }

  async prune(before: number): Promise<void> {
    await this.db.run(`DELETE FROM login_failures WHERE at < $1`, [before]);
    // SKIP LOCKED: a key an enqueue batch holds is left for the next prune rather than waited on.
    await this.db.run(
      `DELETE FROM idempotency_keys WHERE (credential, key) IN (
         SELECT credential, key FROM idempotency_keys WHERE created_at < $1 FOR UPDATE SKIP LOCKED)`,
      [before],
    );
  }
}

export class PgIdempotency implements IdempotencyStore {
  constructor(private readonly db: Db) {}

  async find(credential: string, key: string, since: number): Promise<string | undefined> {
    const [row] = await this.db.query<{ queue_id: string }>(
      `SELECT queue_id FROM idempotency_keys WHERE credential = $1 AND key = $2 AND created_at >= $3`,
      [credential, key, since],
    );
    return row?.queue_id;
  }
}
