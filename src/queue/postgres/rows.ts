/** Rows as PostgreSQL returns them (int8 parsed to number: db.ts), and their conversion to records. */
import type {
  CredentialRecord,
  DomainRecord,
  EventRecord,
  TlsInfo,
  NodeRecord,
  QueuedMessage,
  QueuedRecipient,
  RecipientStatus,
  Suppression,
  TemplateRecord,
  WebhookRecord,
} from '../storage.js';

export const PENDING = `status IN ('queued', 'deferred')`;

/** A messages row without its body. */
export interface MessageRow {
  queue_id: string;
  message_id: string;
  credential: string;
  mail_from: string;
  size: number;
  received_at: number;
  expires_at: number;
}

export interface RecipientRow {
  id: number;
  queue_id: string;
  address: string;
  domain: string;
  status: RecipientStatus;
  attempts: number;
  next_attempt_at: number | null;
  lease_until: number | null;
  lease_owner: string | null;
  last_code: number | null;
  last_response: string | null;
}

/** A recipient claimed for delivery, with its message's envelope. */
export interface ClaimedRow {
  id: number;
  queue_id: string;
  domain: string;
  address: string;
  attempts: number;
  next_attempt_at: number;
  message_id: string;
  credential: string;
  mail_from: string;
  received_at: number;
  expires_at: number;
}

export interface EventRow {
  id: number;
  queue_id: string;
  message_id: string;
  credential: string;
  recipient: string;
  domain: string;
  status: RecipientStatus;
  smtp_code: number | null;
  response: string | null;
  category: string | null;
  tls: string | null;
  at: number;
  tags: string[];
  /** Absent from rows selected column by column. */
  phase?: string | null;
}

export interface SuppressionRow {
  address: string;
  credential: string;
  reason: string;
  created_at: number;
}

export interface DomainRow {
  name: string;
  selector: string;
  algorithm: 'rsa' | 'ed25519';
  private_key_pem: string;
  public_key: string;
  verification_token: string;
  verified_at: number | null;
  checks: Record<string, unknown> | null;
  created_at: number;
}

/** A credentials row with its domains aggregated. */
export interface CredentialRow {
  name: string;
  username: string;
  password_hash: string;
  domains: string[];
  created_at: number;
  revoked_at: number | null;
  old_password_hash: string | null;
  old_secret_until: number | null;
  old_secret_logins: number;
  old_secret_last_login_at: number | null;
  old_api_keys: string[];
}

export interface LimitsRow {
  rate_count: number | null;
  rate_per_seconds: number | null;
  daily: number | null;
  monthly: number | null;
}

export interface TemplateRow {
  name: string;
  version: number;
  subject: string;
  text: string | null;
  html: string | null;
  created_at: number;
}

export interface WebhookRow {
  id: number;
  url: string;
  secret: string;
  events: RecipientStatus[];
  created_at: number;
}

/** An outbox row (outbox_id, attempts) joined with its webhook and the columns of its event. */
export interface OutboxRow extends EventRow {
  outbox_id: number;
  webhook_id: number;
  attempts: number;
  url: string;
  secret: string;
}

export interface NodeRow {
  name: string;
  host: string;
  pid: number;
  started_at: number;
  heartbeat_at: number;
  leased: number;
}

// ---- Rows to records ----------------------------------------------------------------------------

export const toEvent = (r: EventRow): EventRecord => ({
  id: r.id,
  queueId: r.queue_id,
  messageId: r.message_id,
  credential: r.credential,
  recipient: r.recipient,
  domain: r.domain,
  status: r.status,
  smtpCode: r.smtp_code,
  response: r.response,
  category: r.category,
  ...(r.tls && { tls: JSON.parse(r.tls) as TlsInfo }),
  at: r.at,
  tags: r.tags,
  ...(r.phase === 'async' && { phase: 'async' as const }),
});

export const toRecipient = (r: RecipientRow): QueuedRecipient => ({
  address: r.address,
  status: r.status,
  attempts: r.attempts,
  nextAttemptAt: r.next_attempt_at,
  lastCode: r.last_code,
  lastResponse: r.last_response,
  leaseOwner: r.lease_until === null ? null : r.lease_owner,
});

export const toMessage = (m: MessageRow, recipients: RecipientRow[]): QueuedMessage => ({
  queueId: m.queue_id,
  messageId: m.message_id,
  credential: m.credential,
  mailFrom: m.mail_from,
  size: m.size,
  receivedAt: m.received_at,
  recipients: recipients.map(toRecipient),
});

export const toSuppression = (r: SuppressionRow): Suppression => ({
  address: r.address,
  reason: r.reason,
  credential: r.credential === '' ? null : r.credential,
  createdAt: r.created_at,
});

export const toDomain = (r: DomainRow): DomainRecord => ({
  name: r.name,
  selector: r.selector,
  algorithm: r.algorithm,
  privateKeyPem: r.private_key_pem,
  publicKey: r.public_key,
  verificationToken: r.verification_token,
  verified: r.verified_at !== null,
  checks: r.checks,
  createdAt: r.created_at,
  verifiedAt: r.verified_at,
});

export const toCredential = (r: CredentialRow): CredentialRecord => ({
  name: r.name,
  username: r.username,
  passwordHash: r.password_hash,
  domains: r.domains,
  createdAt: r.created_at,
  revokedAt: r.revoked_at,
  ...(r.old_secret_until !== null && {
    rotation: {
      until: r.old_secret_until,
      oldPasswordHash: r.old_password_hash!,
      oldApiKeyHashes: r.old_api_keys,
      oldLogins: r.old_secret_logins,
      lastOldLoginAt: r.old_secret_last_login_at,
    },
  }),
});

export const toTemplate = (r: TemplateRow): TemplateRecord => ({
  name: r.name,
  version: r.version,
  subject: r.subject,
  text: r.text,
  html: r.html,
  createdAt: r.created_at,
});

export const toWebhook = (r: WebhookRow): WebhookRecord => ({
  id: r.id,
  url: r.url,
  secret: r.secret,
  events: r.events,
  createdAt: r.created_at,
});

export const toNode = (r: NodeRow): NodeRecord => ({
  name: r.name,
  host: r.host,
  pid: r.pid,
  startedAt: r.started_at,
  heartbeatAt: r.heartbeat_at,
  leased: r.leased,
});
