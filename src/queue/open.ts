/**
 * Opens the storage the config names: PostgreSQL for a URL (several nodes may share it), else a
 * SQLite file. The PostgreSQL driver is loaded only when used. With a secrets key configured,
 * DKIM keys and webhook secrets are sealed at rest (src/secrets).
 */
import { isPostgresUrl } from '../config/database.js';
import type { RelayConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import { withSecretsAtRest } from '../secrets/at-rest.js';
import { configuredSecretsKey } from '../secrets/key.js';
import { openSqlite } from './sqlite/index.js';
import type { Storage } from './storage.js';

export async function openStorage(
  config: Pick<RelayConfig, 'database' | 'database_pool'> & Partial<Pick<RelayConfig, 'secrets' | 'source'>>,
  logger?: Logger,
): Promise<Storage> {
  const cipher = configuredSecretsKey(config);
  const storage = await openBackend(config, logger);
  try {
    return await withSecretsAtRest(storage, cipher, config.source ?? 'the config', logger);
  } catch (err) {
    await storage.close();
    throw err;
  }
}

async function openBackend(config: Pick<RelayConfig, 'database' | 'database_pool'>, logger?: Logger): Promise<Storage> {
  if (!isPostgresUrl(config.database)) return openSqlite(config.database);
  const { openPostgres } = await import('./postgres/index.js');
  return openPostgres(config.database, { poolSize: config.database_pool, logger });
}
