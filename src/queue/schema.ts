/** The SQLite schema. Statements are idempotent so every process can apply them at open. */
export const SCHEMA = `
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
-- Performance (issue 4): the few recipients an attempt holds, so the scheduler's next due time is a short walk.
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

-- Abuse protection (issue 3): per-credential quotas, their durable usage, idempotent submission
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

-- HTTP API, templates and webhooks (issue 5) -------------------------------------------------
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
