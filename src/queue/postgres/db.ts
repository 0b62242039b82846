/**
 * The connection pool and the two ways the stores use it: a single statement on any pooled
 * connection, or a transaction on one connection with its own commit durability.
 */
import pg from 'pg';
import { StorageFullError } from '../storage.js';

const INT8 = 20;

/**
 * int8 columns (ids, counts, epoch ms) as JS numbers rather than pg's default strings: every
 * value Relay stores is far below 2^53.
 */
const pgTypes: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8 && format !== 'binary' ? Number : pg.types.getTypeParser(oid, format)) as pg.CustomTypesConfig['getTypeParser'],
};

/** How every connection of a Storage is made: the pool's and the dedicated ones (node names, LISTEN). */
export function connectionConfig(url: string): pg.ClientConfig {
  return {
    connectionString: url,
    types: pgTypes,
    application_name: 'relay',
    // A submission waiting on an unreachable server fails (451) instead of hanging.
    connectionTimeoutMillis: 10_000,
    // Dedicated connections sit idle for hours; keepalives notice a dead peer.
    keepAlive: true,
  };
}

export type Sql = Pick<pg.PoolClient, 'query'>;

export class Db {
  constructor(readonly pool: pg.Pool) {}

  async query<R extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<R[]> {
    return (await this.pool.query<R>(sql, params)).rows;
  }

  /** The number of rows the statement wrote. */
  async run(sql: string, params: unknown[] = []): Promise<number> {
    return (await this.pool.query(sql, params)).rowCount ?? 0;
  }

  /**
   * Runs `work` in a transaction on one connection. `synchronousCommit` 'off' returns from
   * COMMIT before the WAL is flushed (for writes whose loss in a crash is harmless); 'on'
   * waits for the flush whatever the server's default.
   */
  async transaction<T>(work: (client: pg.PoolClient) => Promise<T>, synchronousCommit?: 'on' | 'off'): Promise<T> {
    const client = await this.pool.connect();
    try {
      // No parameters: sent as one simple query, one round trip.
      await client.query(synchronousCommit ? `BEGIN; SET LOCAL synchronous_commit = ${synchronousCommit}` : 'BEGIN');
      const result = await work(client);
      await client.query('COMMIT');
      client.release();
      return result;
    } catch (err) {
      // A connection that cannot even roll back is dropped from the pool rather than reused.
      const broken = await client.query('ROLLBACK').then(
        () => false,
        () => true,
      );
      client.release(broken ? (err as Error) : undefined);
      throw err;
    }
  }
}

/** SQLSTATE class 53 "insufficient resources", disk_full: retrying at once will not help. */
export function storageError(err: unknown): unknown {
  return (err as { code?: unknown } | null)?.code === '53100' ? new StorageFullError(err) : err;
}
