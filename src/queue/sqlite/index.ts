/**
 * The embedded backend: one SQLite file in WAL mode, opened side by side by `relay serve` and
 * the CLI. Several processes may open it on one host; several hosts need PostgreSQL.
 */
import type { Storage } from '../storage.js';
import { SqliteAudit } from './audit.js';
import { SqliteConnection } from './connection.js';
import { SqliteCredentialPolicies } from './credential-policies.js';
import { SqliteDkimKeys } from './dkim-keys.js';
import { SqliteEvents } from './events.js';
import { SqliteFeedback } from './feedback.js';
import { SqliteLimits } from './limits.js';
import { migrate } from './migrations.js';
import { SqliteNodes } from './nodes.js';
import { SqliteOperators } from './operators.js';
import { SqliteQueue } from './queue.js';
import { SqliteSecrets } from './secrets.js';
import { SqliteTlsPolicies } from './tls-policies.js';
import { SqliteCredentials, SqliteDomains, SqliteSuppressions, SqliteTemplates, SqliteWebhooks } from './tables.js';

export async function openSqlite(file: string): Promise<Storage> {
  const conn = new SqliteConnection(file);
  try {
    migrate(conn.db);
  } catch (err) {
    conn.db.close();
    throw err;
  }
  const events = new SqliteEvents(conn);
  const suppressions = new SqliteSuppressions(conn);
  const limits = new SqliteLimits(conn);
  const dkimKeys = new SqliteDkimKeys(conn);
  return {
    kind: 'sqlite',
    queue: new SqliteQueue(conn, events, suppressions),
    events,
    suppressions,
    domains: new SqliteDomains(conn, dkimKeys),
    dkimKeys,
    credentials: new SqliteCredentials(conn),
    credentialPolicies: new SqliteCredentialPolicies(conn),
    limits,
    idempotency: limits,
    templates: new SqliteTemplates(conn),
    webhooks: new SqliteWebhooks(conn),
    nodes: new SqliteNodes(conn),
    operators: new SqliteOperators(conn),
    audit: new SqliteAudit(conn),
    secrets: new SqliteSecrets(conn),
    tlsPolicies: new SqliteTlsPolicies(conn),
    feedback: new SqliteFeedback(conn),
    async checkWritable() {
      conn.writeNow(() => undefined);
    },
    async close() {
      conn.close();
    },
  };
}
