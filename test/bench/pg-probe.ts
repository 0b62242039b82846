/**
 * What a PostgreSQL database did during a measured run: statements (pg_stat_statements, when the
 * server preloads it: the test cluster does), commits and WAL bytes, read before and after.
 * Each statement node-postgres sends is one round trip, so statements are the round trips too.
 */
import pg from 'pg';

export interface PgLoad {
  statements: number | null;
  commits: number;
  walBytes: number;
}

export class PgProbe {
  private constructor(
    private readonly client: pg.Client,
    private readonly hasStatements: boolean,
  ) {}

  static async open(url: string): Promise<PgProbe> {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    let hasStatements = false;
    try {
      await client.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
      await client.query('SELECT count(*) FROM pg_stat_statements');
      hasStatements = true;
    } catch {
      // Not preloaded on this server: statements are reported as unknown.
    }
    return new PgProbe(client, hasStatements);
  }

  /** Counters since the server started (statements and commits of this database only). */
  async read(): Promise<PgLoad> {
    const { rows } = await this.client.query<{ commits: string; wal: string; statements: string | null }>(
      `SELECT (SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()) AS commits,
              pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0') AS wal,
              ${this.hasStatements ? `(SELECT sum(calls) FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()))` : 'NULL'} AS statements`,
    );
    const row = rows[0]!;
    return { commits: Number(row.commits), walBytes: Number(row.wal), statements: row.statements === null ? null : Number(row.statements) };
  }

  close(): Promise<void> {
    return this.client.end();
  }
}

/** The load between two readings, per message. */
export function perMessage(before: PgLoad, after: PgLoad, messages: number) {
  const per = (a: number, b: number) => Number(((b - a) / messages).toFixed(2));
  return {
    db_statements_per_msg: before.statements === null || after.statements === null ? null : per(before.statements, after.statements),
    db_commits_per_msg: per(before.commits, after.commits),
    wal_bytes_per_msg: Math.round((after.walBytes - before.walBytes) / messages),
  };
}
