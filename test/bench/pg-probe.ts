/**
 * What a PostgreSQL database did during a measured run: statements (pg_stat_statements, when the
 * server preloads it: the test cluster does), commits and WAL bytes, read before and after.
 * Each statement node-postgres sends is one round trip, so statements are the round trips too;
 * the server's CPU per message is what sizes the primary for several nodes.
 */
import { readdirSync, readFileSync } from 'node:fs';
import pg from 'pg';

export interface PgLoad {
  statements: number | null;
  commits: number;
  walBytes: number;
  /** CPU time of every PostgreSQL server process on this machine, in ms (the test cluster's). */
  serverCpuMs: number;
}

/** Linux reports CPU times in clock ticks of 1/100 s (USER_HZ). */
const TICKS_PER_SECOND = 100;

/** utime + stime (and those of waited-for children) of every process named postgres. */
function postgresCpuMs(): number {
  let ticks = 0;
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      continue;
    }
    if (!stat.includes('(postgres)')) continue;
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    ticks += Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]);
  }
  return (ticks * 1000) / TICKS_PER_SECOND;
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
    return {
      commits: Number(row.commits),
      walBytes: Number(row.wal),
      statements: row.statements === null ? null : Number(row.statements),
      serverCpuMs: postgresCpuMs(),
    };
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
    db_cpu_ms_per_msg: per(before.serverCpuMs, after.serverCpuMs),
  };
}
