/**
 * The SQLite schema, as numbered migrations recorded in PRAGMA user_version. Each runs once, in
 * an IMMEDIATE transaction that re-reads the version, so processes opening the file together
 * (the CLI beside `relay serve`) never apply one twice. Version 1 is the schema of release
 * 0.1.0, written with IF NOT EXISTS because that release kept no version.
 */
import type Database from 'better-sqlite3';

const V1_RELEASE_0_1_0 = `
CREATE TABLE IF NOT EXISTS messages (
  queue_id    TEXT PRIMARY KEY,
  message_id  TEXT NOT NULL,
  credential  TEXT NOT NULL,
  mail_from   TEXT NOT NULL,
  size        INTEGER NOT NULL,
  body        BLOB,              -- dropped once every recipient is final
  received_at INTEGER NOT NULL,
  expires_at  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS recipients (
  id              INTEGER PRIMARY KEY,
  queue_id        TEXT NOT NULL REFERENCES messages(queue_id) ON DELETE CASCADE,
  address         TEXT NOT NULL,
  domain          TEXT NOT NULL,
  status          TEXT NOT NULL,
  attempts        INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER,
  lease_until     INTEGER,       -- set while a delivery attempt owns the row; expires after a crash
  last_code       INTEGER,
  last_response   TEXT,
  category        TEXT,
  updated_at      INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS recipients_due ON recipients (next_attempt_at) WHERE status IN ('queued', 'deferred');
CREATE INDEX IF NOT EXISTS recipients_queue ON recipients (queue_id);
-- The few recipients an attempt holds, so the scheduler's next due time is a short walk.
CREATE INDEX IF NOT EXISTS recipients_leased ON recipients (lease_until) WHERE lease_until IS NOT NULL;
CREATE TABLE IF NOT EXISTS events (
  id         INTEGER PRIMARY KEY,
  queue_id   TEXT NOT NULL,
  message_id TEXT NOT NULL,
  recipient  TEXT NOT NULL,
  domain     TEXT NOT NULL,
  status     TEXT NOT NULL,
  smtp_code  INTEGER,
  response   TEXT,
  category   TEXT,
  at         INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS events_recipient ON events (recipient COLLATE NOCASE);
CREATE INDEX IF NOT EXISTS events_queue ON events (queue_id);
CREATE TABLE IF NOT EXISTS suppressions (
  address    TEXT PRIMARY KEY,   -- lower-cased
  reason     TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS domains (
  name               TEXT PRIMARY KEY,
  selector           TEXT NOT NULL,
  algorithm          TEXT NOT NULL,
  private_key_pem    TEXT NOT NULL,
  public_key         TEXT NOT NULL,
  verification_token TEXT NOT NULL,
  verified_at        INTEGER,
  checks             TEXT,
  created_at         INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS credentials (
  name          TEXT PRIMARY KEY,
  username      TEXT NOT NULL UNIQUE,
  password_hash TEXT NOT NULL,
  created_at    INTEGER NOT NULL,
  revoked_at    INTEGER
);
CREATE TABLE IF NOT EXISTS credential_domains (
  credential TEXT NOT NULL REFERENCES credentials(name) ON DELETE CASCADE,
  domain     TEXT NOT NULL,
  PRIMARY KEY (credential, domain)
);

CREATE TABLE IF NOT EXISTS credential_limits (
  credential       TEXT PRIMARY KEY REFERENCES credentials(name) ON DELETE CASCADE,
  rate_count       INTEGER,       -- recipients per rate_per_seconds; NULL = no rate limit
  rate_per_seconds INTEGER,
  daily            INTEGER,       -- recipients per UTC day; NULL = unlimited
  monthly          INTEGER        -- recipients per UTC month; NULL = unlimited
);
CREATE TABLE IF NOT EXISTS credential_usage (
  credential TEXT NOT NULL,
  period     TEXT NOT NULL,       -- 'YYYY-MM-DD' (UTC day) or 'YYYY-MM' (UTC month)
  recipients INTEGER NOT NULL,
  PRIMARY KEY (credential, period)
);
CREATE TABLE IF NOT EXISTS idempotency_keys (
  credential TEXT NOT NULL,
  key        TEXT NOT NULL,       -- 'key:' + Idempotency-Key header, or 'mid:' + Message-ID and envelope digest
  queue_id   TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (credential, key)
);
CREATE INDEX IF NOT EXISTS idempotency_keys_created ON idempotency_keys (created_at);

CREATE TABLE IF NOT EXISTS api_keys (
  key_hash   TEXT PRIMARY KEY,   -- SHA-256 of the key; the key itself is shown once and never stored
  credential TEXT NOT NULL REFERENCES credentials(name) ON DELETE CASCADE,
  created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS templates (
  name       TEXT NOT NULL,
  version    INTEGER NOT NULL,
  subject    TEXT NOT NULL,
  text       TEXT,
  html       TEXT,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (name, version)
);
CREATE TABLE IF NOT EXISTS webhooks (
  id         INTEGER PRIMARY KEY,
  url        TEXT NOT NULL,
  secret     TEXT NOT NULL,      -- HMAC key; needed in clear to sign
  events     TEXT NOT NULL,      -- comma-separated statuses
  created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS webhook_outbox (
  id              INTEGER PRIMARY KEY,
  webhook_id      INTEGER NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
  event_id        INTEGER NOT NULL,
  payload         TEXT NOT NULL,
  attempts        INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL,
  last_error      TEXT,
  created_at      INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS webhook_outbox_due ON webhook_outbox (next_attempt_at);
CREATE INDEX IF NOT EXISTS events_at ON events (at);
`;

const V2_SEVERAL_NODES = `
ALTER TABLE recipients ADD COLUMN lease_owner TEXT;
ALTER TABLE events ADD COLUMN credential TEXT NOT NULL DEFAULT '';
UPDATE events SET credential = coalesce((SELECT credential FROM messages m WHERE m.queue_id = events.queue_id), '');
CREATE INDEX events_credential ON events (credential, id);
CREATE INDEX messages_received ON messages (received_at);

-- Suppressions gain a scope: '' applies to every credential, else to the one named.
CREATE TABLE suppressions_v2 (
  address    TEXT NOT NULL,       -- lower-cased
  credential TEXT NOT NULL DEFAULT '',
  reason     TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (address, credential)
);
INSERT INTO suppressions_v2 (address, credential, reason, created_at) SELECT address, '', reason, created_at FROM suppressions;
DROP TABLE suppressions;
ALTER TABLE suppressions_v2 RENAME TO suppressions;

-- The outbox names the event; the payload is built from it when sent.
CREATE TABLE webhook_outbox_v2 (
  id              INTEGER PRIMARY KEY,
  webhook_id      INTEGER NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
  event_id        INTEGER NOT NULL,
  attempts        INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL,
  last_error      TEXT,
  created_at      INTEGER NOT NULL
);
INSERT INTO webhook_outbox_v2 (id, webhook_id, event_id, attempts, next_attempt_at, last_error, created_at)
  SELECT id, webhook_id, event_id, attempts, next_attempt_at, last_error, created_at FROM webhook_outbox;
DROP TABLE webhook_outbox;
ALTER TABLE webhook_outbox_v2 RENAME TO webhook_outbox;
CREATE INDEX webhook_outbox_due ON webhook_outbox (next_attempt_at);

CREATE TABLE nodes (
  name         TEXT PRIMARY KEY,
  host         TEXT NOT NULL,
  pid          INTEGER NOT NULL,
  started_at   INTEGER NOT NULL,
  heartbeat_at INTEGER NOT NULL
);
CREATE TABLE rate_buckets (
  credential TEXT PRIMARY KEY,
  tokens     REAL NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE TABLE login_failures (
  key TEXT NOT NULL,              -- 'ip:ADDR', 'user:NAME' or 'user-ip:NAME ADDR'
  at  INTEGER NOT NULL
);
CREATE INDEX login_failures_key ON login_failures (key, at);
`;

const V3_SENDER_IDENTITIES_SANDBOX_TAGS = `
-- Tags as a JSON array; NULL: none. Events carry their message's tags so stats and exports need no join.
ALTER TABLE messages ADD COLUMN tags TEXT;
ALTER TABLE events ADD COLUMN tags TEXT;
CREATE TABLE credential_policies (
  credential         TEXT PRIMARY KEY REFERENCES credentials(name) ON DELETE CASCADE,
  senders            TEXT NOT NULL DEFAULT '[]',   -- JSON array of addresses; empty: any address of its domains
  reply_to_domains   TEXT NOT NULL DEFAULT '[]',   -- JSON array; empty: any Reply-To
  sandbox            INTEGER NOT NULL DEFAULT 0,
  allowed_recipients TEXT NOT NULL DEFAULT '[]'    -- JSON array of addresses and @domain entries
);
`;
const V4_OPERATORS = `
-- Named operator tokens with a role: a token is "ro_" + token_id + "." + secret; only the secret's SHA-256 is kept.
CREATE TABLE operators (
  name            TEXT PRIMARY KEY,
  role            TEXT NOT NULL CHECK (role IN ('admin', 'sender-admin', 'template-editor', 'viewer')),
  token_id        TEXT NOT NULL UNIQUE,
  token_hash      TEXT NOT NULL,
  created_at      INTEGER NOT NULL,
  token_issued_at INTEGER NOT NULL,
  revoked_at      INTEGER
);
`;

const V_AUDIT_AND_ROTATION = `
-- Append-only and hash-chained (src/audit/chain.ts): seq has no gaps, prev_hash is the previous row's hash.
CREATE TABLE audit_log (
  seq       INTEGER PRIMARY KEY,
  at        INTEGER NOT NULL,
  actor     TEXT NOT NULL,
  action    TEXT NOT NULL,
  target    TEXT NOT NULL,
  change    TEXT NOT NULL,      -- canonical JSON, hashed as stored
  prev_hash TEXT NOT NULL UNIQUE, -- two rows chained onto one would be a fork
  hash      TEXT NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at);

-- The secrets a rotation replaced keep working until old_secret_until; their logins are counted.
ALTER TABLE credentials ADD COLUMN old_password_hash TEXT;
ALTER TABLE credentials ADD COLUMN old_secret_until INTEGER;
ALTER TABLE credentials ADD COLUMN old_secret_logins INTEGER NOT NULL DEFAULT 0;
ALTER TABLE credentials ADD COLUMN old_secret_last_login_at INTEGER;
ALTER TABLE api_keys ADD COLUMN expires_at INTEGER;   -- set when a rotation retires the key
`;

/** Several DKIM keys per domain, for rotation and dual signing; each domain's key becomes its first. */
const DKIM_KEYS = `
CREATE TABLE dkim_keys (
  domain          TEXT NOT NULL REFERENCES domains(name) ON DELETE CASCADE,
  selector        TEXT NOT NULL,
  algorithm       TEXT NOT NULL,
  private_key_pem TEXT,              -- NULL once retired
  public_key      TEXT NOT NULL,
  state           TEXT NOT NULL,     -- pending, active, retiring, retired
  auto_activate   INTEGER NOT NULL DEFAULT 0,
  created_at      INTEGER NOT NULL,
  published_at    INTEGER,
  activated_at    INTEGER,
  retire_at       INTEGER,
  PRIMARY KEY (domain, selector)
);
CREATE INDEX dkim_keys_state ON dkim_keys (state, retire_at);
INSERT INTO dkim_keys (domain, selector, algorithm, private_key_pem, public_key, state, created_at, activated_at)
  SELECT name, selector, algorithm, private_key_pem, public_key, 'active', created_at, created_at FROM domains;
`;

const V_OUTBOUND_TLS = `
ALTER TABLE events ADD COLUMN tls TEXT;            -- JSON: version, cipher, verified, policy
CREATE TABLE sts_policies (
  domain     TEXT PRIMARY KEY,
  id         TEXT NOT NULL,
  mode       TEXT NOT NULL,
  mx         TEXT NOT NULL,                      -- JSON array
  max_age    INTEGER NOT NULL,
  fetched_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE TABLE tls_results (
  day           TEXT NOT NULL,                   -- YYYY-MM-DD, UTC
  policy_domain TEXT NOT NULL,
  policy_type   TEXT NOT NULL,
  policy_string TEXT NOT NULL,                   -- JSON array
  mx_host       TEXT NOT NULL,
  result_type   TEXT NOT NULL,
  count         INTEGER NOT NULL,
  PRIMARY KEY (day, policy_domain, policy_type, policy_string, mx_host, result_type)
);
`;

const FEEDBACK = `
-- The key signing return-path and unsubscribe tokens: one row, made by the first process to ask.
CREATE TABLE feedback_secret (
  id         INTEGER PRIMARY KEY CHECK (id = 1),
  secret     BLOB NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE TABLE credential_feedback (
  credential       TEXT PRIMARY KEY,
  list_unsubscribe INTEGER NOT NULL DEFAULT 0
);
-- 'async' for what the receiving side reported later (bounce, complaint, unsubscribe).
ALTER TABLE events ADD COLUMN phase TEXT;
-- Reports without a return-path token are matched by the original Message-ID.
CREATE INDEX messages_message_id ON messages (message_id);
`;

const MESSAGE_PIECES = `
-- A body bigger than one piece (queue/pieces.ts), with messages.body NULL.
CREATE TABLE message_pieces (
  queue_id TEXT NOT NULL REFERENCES messages(queue_id) ON DELETE CASCADE,
  seq      INTEGER NOT NULL,
  data     BLOB NOT NULL,
  PRIMARY KEY (queue_id, seq)
);
`;

const MIGRATIONS = [
  V1_RELEASE_0_1_0,
  V2_SEVERAL_NODES,
  V3_SENDER_IDENTITIES_SANDBOX_TAGS,
  V4_OPERATORS,
  V_AUDIT_AND_ROTATION,
  DKIM_KEYS,
  V_OUTBOUND_TLS,
  FEEDBACK,
  MESSAGE_PIECES,
];
export const SCHEMA_VERSION = MIGRATIONS.length;

export function migrate(db: Database.Database): void {
  const version = () => db.pragma('user_version', { simple: true }) as number;
  if (version() === SCHEMA_VERSION) return;
  if (version() > SCHEMA_VERSION) {
    throw new Error(`the database has schema version ${version()}, newer than this release knows (${SCHEMA_VERSION}): upgrade Relay`);
  }
  // Table rebuilds must not cascade deletes while a table is swapped.
  db.pragma('foreign_keys = OFF');
  try {
    db.transaction(() => {
      for (let v = version(); v < SCHEMA_VERSION; v++) {
        db.exec(MIGRATIONS[v]!);
        db.pragma(`user_version = ${v + 1}`);
      }
    }).immediate();
  } finally {
    db.pragma('foreign_keys = ON');
  }
}
