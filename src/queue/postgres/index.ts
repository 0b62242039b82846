/**
 * The PostgreSQL backend: every store of storage.ts on one connection pool, for several Relay
 * nodes sharing one database. Submissions are committed with synchronous_commit on before they
 * resolve; delivery outcomes and claims without waiting for the WAL flush (losing one in a crash
 * costs a repeated delivery, never a message).
 */
import pg from 'pg';
import type { Logger } from 'pino';
import type { Storage } from '../storage.js';
import { PgCredentialPolicies } from './credential-policies.js';
import { PgAudit } from './audit.js';
import { connectionConfig, Db } from './db.js';
import { PgDkimKeys } from './dkim-keys.js';
import { WORK_CHANNEL } from './enqueue.js';
import { PgEventLog } from './events.js';
import { PgFeedback } from './feedback.js';
import { PgIdempotency, PgLimits } from './limits.js';
import { migrate } from './migrations.js';
import { PgNodes } from './nodes.js';
import { PgOperators } from './operators.js';
import { PgMessageQueue } from './queue.js';
import { PgSecrets } from './secrets.js';
import { PgCredentials, PgDomains, PgSuppressions, PgTemplates } from './tables.js';
import { PgWebhooks } from './webhooks.js';
import { PgTlsPolicies } from './tls-policies.js';

export interface PostgresOptions {
  poolSize: number;
  logger?: Logger;
}

export interface PostgresStorage extends Storage {
  readonly kind: 'postgres';
  /**
   * Calls `listener` when any node queues mail or retries a message (LISTEN/NOTIFY), so an idle
   * scheduler can wake early; only a hint, polling nextDueAt() stays the rule. The listener is
   * also called once its subscription is live (what was queued before went unannounced).
   * Returns the unsubscribe.
   */
  onWork(listener: () => void): () => void;
}

export async function openPostgres(url: string, options: PostgresOptions): Promise<PostgresStorage> {
  const { logger } = options;
  const pool = new pg.Pool({ ...connectionConfig(url), max: options.poolSize });
  // An idle pooled connection that breaks is replaced on next use; without a listener it would crash the process.
  pool.on('error', (err) => logger?.warn({ err }, 'idle PostgreSQL connection failed'));
  const db = new Db(pool);
  try {
    await migrate(db, logger);
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw err;
  }

  const queue = new PgMessageQueue(db, logger);
  const nodes = new PgNodes(db, url, logger);
  const dkimKeys = new PgDkimKeys(db);
  const listeners = new Set<() => void>();
  let listening: Promise<pg.Client | undefined> | undefined;
  let live = false;
  let closed = false;

  const wake = (listener: () => void) => {
    if (listeners.has(listener)) listener();
  };
  // Work queued before LISTEN took effect was not announced: every listener hears once that
  // its subscription is live, and again whenever the connection had to be made anew.
  const listen = (): Promise<pg.Client | undefined> => {
    const client = new pg.Client(connectionConfig(url));
    client.on('notification', () => listeners.forEach(wake));
    client.on('error', (err) => {
      logger?.warn({ err }, 'lost the PostgreSQL LISTEN connection');
      live = false;
      client.end().catch(() => undefined);
      listening = !closed && listeners.size > 0 ? listen() : undefined;
    });
    return client
      .connect()
      .then(() => client.query(`LISTEN ${WORK_CHANNEL}`))
      .then(
        () => {
          live = true;
          listeners.forEach(wake);
          return client;
        },
        (err: unknown) => {
          // Polling carries on; the next subscription tries again.
          logger?.warn({ err }, 'could not LISTEN for new work');
          listening = undefined;
          client.end().catch(() => undefined);
          return undefined;
        },
      );
  };

  return {
    kind: 'postgres',
    queue,
    events: new PgEventLog(db),
    suppressions: new PgSuppressions(db),
    domains: new PgDomains(db, dkimKeys),
    dkimKeys,
    credentials: new PgCredentials(db),
    credentialPolicies: new PgCredentialPolicies(db),
    limits: new PgLimits(db),
    idempotency: new PgIdempotency(db),
    templates: new PgTemplates(db),
    webhooks: new PgWebhooks(db),
    nodes,
    operators: new PgOperators(db),
    audit: new PgAudit(db),
    secrets: new PgSecrets(db),
    tlsPolicies: new PgTlsPolicies(db),
    feedback: new PgFeedback(db),

    onWork(listener) {
      listeners.add(listener);
      if (live) setImmediate(() => wake(listener));
      else if (!closed) listening ??= listen();
      return () => listeners.delete(listener);
    },

    async checkWritable() {
      await db.run(`INSERT INTO writable_probe (at) VALUES ($1) ON CONFLICT (id) DO UPDATE SET at = excluded.at`, [Date.now()]);
    },

    async close() {
      closed = true;
      await queue.flush();
      const listener = await listening;
      listening = undefined;
      live = false;
      await Promise.all([nodes.close(), listener?.end().catch(() => undefined)]);
      await pool.end();
    },
  };
}
