/**
 * The PostgreSQL schema as numbered migrations. Each runs once per database: every process
 * applies the missing ones at open, in one transaction holding an advisory lock, so nodes
 * starting together wait for the first instead of racing it. Times are epoch ms (BIGINT).
 */
import type { Logger } from 'pino';
import type { Db } from './db.js';

interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** pg_advisory_xact_lock key for migrations: "RELAYMIG" as a big-endian int8. */
const MIGRATION_LOCK = '5928228328057948487';

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'initial schema',
    sql: `
CREATE TABLE messages (
  queue_id    TEXT PRIMARY KEY,
  message_id  TEXT NOT NULL,
  credential  TEXT NOT NULL,
  mail_from   TEXT NOT NULL,
  size        INTEGER NOT NULL,
  body        BYTEA,             -- dropped once every recipient is final
  received_at BIGINT NOT NULL,
  expires_at  BIGINT NOT NULL
);
CREATE INDEX messages_received ON messages (received_at);

CREATE TABLE recipients (
  id              BIGSERIAL PRIMARY KEY,
  queue_id        TEXT NOT NULL REFERENCES messages (queue_id) ON DELETE CASCADE,
  address         TEXT NOT NULL,
  domain          TEXT NOT NULL,
  status          TEXT NOT NULL CHECK (status IN ('queued', 'delivered', 'deferred', 'bounced', 'expired', 'suppressed')),
  attempts        INTEGER NOT NULL DEFAULT 0,
  next_attempt_at BIGINT,
  lease_until     BIGINT,          -- set while a node's delivery attempt owns the row; runs out after a crash
  lease_owner     TEXT,
  last_code       INTEGER,
  last_response   TEXT,
  category        TEXT,
  updated_at      BIGINT NOT NULL
);
CREATE INDEX recipients_due ON recipients (next_attempt_at) WHERE status IN ('queued', 'deferred');
CREATE INDEX recipients_job ON recipients (queue_id, domain);
-- The few rows under lease: renewals and releases by owner, node listings, the next lease to run out.
CREATE INDEX recipients_leased ON recipients (lease_owner, lease_until) WHERE lease_until IS NOT NULL;

CREATE TABLE events (
  id         BIGSERIAL PRIMARY KEY,
  queue_id   TEXT NOT NULL,
  message_id TEXT NOT NULL,
  recipient  TEXT NOT NULL,
  domain     TEXT NOT NULL,
  status     TEXT NOT NULL,
  smtp_code  INTEGER,
  response   TEXT,
  category   TEXT,
  credential TEXT NOT NULL,      -- that submitted the message ('' for Relay's own)
  at         BIGINT NOT NULL
);
CREATE INDEX events_at ON events (at);
CREATE INDEX events_recipient ON events (lower(recipient));
CREATE INDEX events_queue ON events (queue_id);
CREATE INDEX events_credential ON events (credential, id);
-- stats(): statuses no recipient row holds are counted from the events.
CREATE INDEX events_not_queued ON events (domain, status) WHERE status IN ('suppressed', 'complained', 'unsubscribed');

CREATE TABLE suppressions (
  address    TEXT NOT NULL,      -- lower-cased
  credential TEXT NOT NULL,      -- '' = every credential
  reason     TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (address, credential)
);

CREATE TABLE domains (
  name               TEXT PRIMARY KEY,
  selector           TEXT NOT NULL,
  algorithm          TEXT NOT NULL,
  private_key_pem    TEXT NOT NULL,
  public_key         TEXT NOT NULL,
  verification_token TEXT NOT NULL,
  verified_at        BIGINT,
  checks             JSONB,
  created_at         BIGINT NOT NULL
);

CREATE TABLE credentials (
  name          TEXT PRIMARY KEY,
  username      TEXT NOT NULL UNIQUE,
  password_hash TEXT NOT NULL,
  created_at    BIGINT NOT NULL,
  revoked_at    BIGINT
);
CREATE TABLE credential_domains (
  credential TEXT NOT NULL REFERENCES credentials (name) ON DELETE CASCADE,
  domain     TEXT NOT NULL,
  PRIMARY KEY (credential, domain)
);
CREATE INDEX credential_domains_domain ON credential_domains (domain);
CREATE TABLE credential_limits (
  credential       TEXT PRIMARY KEY REFERENCES credentials (name) ON DELETE CASCADE,
  rate_count       INTEGER,        -- recipients per rate_per_seconds; NULL = no rate limit
  rate_per_seconds INTEGER,
  daily            BIGINT,         -- recipients per UTC day; NULL = unlimited
  monthly          BIGINT          -- recipients per UTC month; NULL = unlimited
);
CREATE TABLE credential_usage (
  credential TEXT NOT NULL,
  period     TEXT NOT NULL,        -- 'YYYY-MM-DD' (UTC day) or 'YYYY-MM' (UTC month)
  recipients BIGINT NOT NULL,
  PRIMARY KEY (credential, period)
);
CREATE TABLE idempotency_keys (
  credential TEXT NOT NULL,
  key        TEXT NOT NULL,
  queue_id   TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (credential, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
CREATE TABLE rate_buckets (
  credential TEXT PRIMARY KEY,
  tokens     DOUBLE PRECISION NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE TABLE login_failures (
  key TEXT NOT NULL,
  at  BIGINT NOT NULL
);
CREATE INDEX login_failures_key ON login_failures (key, at);
CREATE INDEX login_failures_at ON login_failures (at);

CREATE TABLE api_keys (
  key_hash   TEXT PRIMARY KEY,   -- SHA-256 of the key; the key itself is never stored
  credential TEXT NOT NULL REFERENCES credentials (name) ON DELETE CASCADE,
  created_at BIGINT NOT NULL
);
CREATE TABLE templates (
  name       TEXT NOT NULL,
  version    INTEGER NOT NULL,
  subject    TEXT NOT NULL,
  text       TEXT,
  html       TEXT,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (name, version)
);
CREATE TABLE webhooks (
  id         BIGSERIAL PRIMARY KEY,
  url        TEXT NOT NULL,
  secret     TEXT NOT NULL,      -- HMAC key; needed in clear to sign
  events     TEXT[] NOT NULL,
  created_at BIGINT NOT NULL
);
-- The payload is the event row itself, joined when the entry is claimed.
CREATE TABLE webhook_outbox (
  id              BIGSERIAL PRIMARY KEY,
  webhook_id      BIGINT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
  event_id        BIGINT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
  attempts        INTEGER NOT NULL DEFAULT 0,
  next_attempt_at BIGINT NOT NULL,
  last_error      TEXT,
  created_at      BIGINT NOT NULL
);
CREATE INDEX webhook_outbox_due ON webhook_outbox (next_attempt_at, id);
CREATE INDEX webhook_outbox_webhook ON webhook_outbox (webhook_id);
CREATE INDEX webhook_outbox_event ON webhook_outbox (event_id);

CREATE TABLE nodes (
  name         TEXT PRIMARY KEY,
  host         TEXT NOT NULL,
  pid          INTEGER NOT NULL,
  started_at   BIGINT NOT NULL,
  heartbeat_at BIGINT NOT NULL
);

-- One row, rewritten by the readiness probe: a write that fails where the relay could not write.
CREATE TABLE writable_probe (
  id BOOLEAN PRIMARY KEY DEFAULT true CHECK (id),
  at BIGINT NOT NULL
);
`,
  },
  {
    version: 2,
    name: 'sender identities, sandbox credentials, tags',
    sql: `
-- Events carry their message's tags, so stats and exports need no join.
ALTER TABLE messages ADD COLUMN tags TEXT[] NOT NULL DEFAULT '{}';
ALTER TABLE events ADD COLUMN tags TEXT[] NOT NULL DEFAULT '{}';
CREATE TABLE credential_policies (
  credential         TEXT PRIMARY KEY REFERENCES credentials (name) ON DELETE CASCADE,
  senders            TEXT[] NOT NULL DEFAULT '{}',   -- empty: any address of its domains
  reply_to_domains   TEXT[] NOT NULL DEFAULT '{}',   -- empty: any Reply-To
  sandbox            BOOLEAN NOT NULL DEFAULT false,
  allowed_recipients TEXT[] NOT NULL DEFAULT '{}'    -- addresses and @domain entries
);
`,
  },
  {
    version: 3,
    name: 'operators',
    sql: `
-- Named operator tokens with a role: a token is "ro_" + token_id + "." + secret; only the secret's SHA-256 is kept.
CREATE TABLE operators (
  name            TEXT PRIMARY KEY,
  role            TEXT NOT NULL CHECK (role IN ('admin', 'sender-admin', 'template-editor', 'viewer')),
  token_id        TEXT NOT NULL UNIQUE,
  token_hash      TEXT NOT NULL,
  created_at      BIGINT NOT NULL,
  token_issued_at BIGINT NOT NULL,
  revoked_at      BIGINT
);
`,
  },
  {
    version: 4,
    name: 'audit log, credential rotation',
    sql: `
-- Append-only and hash-chained (src/audit/chain.ts): seq has no gaps, prev_hash is the previous row's hash.
CREATE TABLE audit_log (
  seq       BIGINT PRIMARY KEY,
  at        BIGINT NOT NULL,
  actor     TEXT NOT NULL,
  action    TEXT NOT NULL,
  target    TEXT NOT NULL,
  change    TEXT NOT NULL,        -- canonical JSON, hashed as stored (not jsonb, which reorders keys)
  prev_hash TEXT NOT NULL UNIQUE, -- two rows chained onto one would be a fork
  hash      TEXT NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at);

-- The secrets a rotation replaced keep working until old_secret_until; their logins are counted.
ALTER TABLE credentials
  ADD COLUMN old_password_hash TEXT,
  ADD COLUMN old_secret_until BIGINT,
  ADD COLUMN old_secret_logins INTEGER NOT NULL DEFAULT 0,
  ADD COLUMN old_secret_last_login_at BIGINT;
ALTER TABLE api_keys ADD COLUMN expires_at BIGINT;   -- set when a rotation retires the key
`,
  },
  {
    version: 5,
    name: 'dkim keys',
    sql: `
-- Several DKIM keys per domain, for rotation and dual signing; each domain's key becomes its first.
CREATE TABLE dkim_keys (
  domain          TEXT NOT NULL REFERENCES domains (name) ON DELETE CASCADE,
  selector        TEXT NOT NULL,
  algorithm       TEXT NOT NULL,
  private_key_pem TEXT,              -- NULL once retired
  public_key      TEXT NOT NULL,
  state           TEXT NOT NULL,     -- pending, active, retiring, retired
  auto_activate   BOOLEAN NOT NULL DEFAULT false,
  created_at      BIGINT NOT NULL,
  published_at    BIGINT,
  activated_at    BIGINT,
  retire_at       BIGINT,
  PRIMARY KEY (domain, selector)
);
CREATE INDEX dkim_keys_state ON dkim_keys (state, retire_at);
INSERT INTO dkim_keys (domain, selector, algorithm, private_key_pem, public_key, state, created_at, activated_at)
  SELECT name, selector, algorithm, private_key_pem, public_key, 'active', created_at, created_at FROM domains;
`,
  },
  {
    version: 6,
    name: 'outbound TLS policies and reports',
    sql: `
ALTER TABLE events ADD COLUMN tls TEXT;            -- JSON: version, cipher, verified, policy
CREATE TABLE sts_policies (
  domain     TEXT PRIMARY KEY,
  id         TEXT NOT NULL,
  mode       TEXT NOT NULL,
  mx         TEXT[] NOT NULL,
  max_age    INTEGER NOT NULL,
  fetched_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL
);
CREATE TABLE tls_results (
  day           TEXT NOT NULL,                   -- YYYY-MM-DD, UTC
  policy_domain TEXT NOT NULL,
  policy_type   TEXT NOT NULL,
  policy_string TEXT[] NOT NULL,
  mx_host       TEXT NOT NULL,
  result_type   TEXT NOT NULL,
  count         BIGINT NOT NULL,
  PRIMARY KEY (day, policy_domain, policy_type, policy_string, mx_host, result_type)
);
`,
  },
  {
    version: 7,
    name: 'feedback from the receiving side',
    sql: `
-- The key signing return-path and unsubscribe tokens: one row, made by the first node to ask.
CREATE TABLE feedback_secret (
  id         BOOLEAN PRIMARY KEY DEFAULT true CHECK (id),
  secret     BYTEA NOT NULL,
  created_at BIGINT NOT NULL
);
CREATE TABLE credential_feedback (
  credential       TEXT PRIMARY KEY,
  list_unsubscribe BOOLEAN NOT NULL DEFAULT false
);
-- 'async' for what the receiving side reported later (bounce, complaint, unsubscribe).
ALTER TABLE events ADD COLUMN phase TEXT;
-- Reports without a return-path token are matched by the original Message-ID.
CREATE INDEX messages_message_id ON messages (message_id);
`,
  },
  {
    version: 8,
    name: 'message bodies in pieces',
    sql: `
-- A body bigger than one piece (queue/pieces.ts), with messages.body NULL.
CREATE TABLE message_pieces (
  queue_id TEXT NOT NULL REFERENCES messages (queue_id) ON DELETE CASCADE,
  seq      INTEGER NOT NULL,
  data     BYTEA NOT NULL,
  PRIMARY KEY (queue_id, seq)
);
`,
  },
];

export async function migrate(db: Db, logger?: Logger): Promise<void> {
  // Up to date (every start but the first after an upgrade): no lock, no DDL, works read-only too.
  const known = MIGRATIONS.at(-1)!.version;
  const applied = await appliedVersions(db);
  if (MIGRATIONS.every((m) => applied.has(m.version))) {
    warnIfNewer(applied, known, logger);
    return;
  }
  await db.transaction(async (client) => {
    await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await client.query(
      `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`,
    );
    const { rows } = await client.query<{ version: number }>('SELECT version FROM schema_migrations');
    // Read again under the lock: another node may have migrated meanwhile.
    const done = new Set(rows.map((r) => r.version));
    for (const migration of MIGRATIONS) {
      if (done.has(migration.version)) continue;
      await client.query(migration.sql);
      await client.query('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [
        migration.version,
        migration.name,
        Date.now(),
      ]);
      logger?.info({ version: migration.version, migration: migration.name }, 'database migrated');
    }
    warnIfNewer(done, known, logger);
  });
}

async function appliedVersions(db: Db): Promise<Set<number>> {
  try {
    return new Set((await db.query<{ version: number }>('SELECT version FROM schema_migrations')).map((r) => r.version));
  } catch (err) {
    if ((err as { code?: string }).code === '42P01') return new Set(); // undefined_table: a new database
    throw err;
  }
}

/** A newer node migrated the database during a rolling upgrade; this one runs on, on the older part of the schema. */
function warnIfNewer(applied: Set<number>, known: number, logger: Logger | undefined): void {
  const newest = Math.max(0, ...applied);
  if (newest > known) logger?.warn({ schemaVersion: newest, knownVersion: known }, 'database schema is newer than this relay');
}
