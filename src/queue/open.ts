/**
 * Opens the storage the config names: PostgreSQL for a URL (several nodes may share it), else a
 * SQLite file. The PostgreSQL driver is loaded only when used.
 */
import { isPostgresUrl } from '../config/database.js';
import type { RelayConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import { openSqlite } from './sqlite/index.js';
import type { Storage } from './storage.js';

export async function openStorage(config: Pick<RelayConfig, 'database' | 'database_pool'>, logger?: Logger): Promise<Storage> {
  if (!isPostgresUrl(config.database)) return openSqlite(config.database);
  const { openPostgres } = await import('./postgres/index.js');
  return openPostgres(config.database, { poolSize: config.database_pool, logger });
}
