/** Rows as SQLite returns them, and their conversion to the records of storage.ts: one place per table. */
import type {
  CredentialRecord,
  DomainRecord,
  EventRecord,
  TlsInfo,
  QueuedRecipient,
  RecipientStatus,
  TemplateRecord,
  WebhookRecord,
} from '../storage.js';

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
  /** JSON array, or NULL for none. */
  tags: string | null;
  /** Absent from rows selected column by column. */
  phase?: string | null;
}

export interface DomainRow {
  name: string;
  selector: string;
  algorithm: 'rsa' | 'ed25519';
  private_key_pem: string;
  public_key: string;
  verification_token: string;
  verified_at: number | null;
  checks: string | null;
  created_at: number;
}

export interface CredentialRow {
  name: string;
  username: string;
  password_hash: string;
  created_at: number;
  revoked_at: number | null;
  old_password_hash: string | null;
  old_secret_until: number | null;
  old_secret_logins: number;
  old_secret_last_login_at: number | null;
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
  events: string;
  created_at: number;
}

export const toRecipient = (r: RecipientRow): QueuedRecipient => ({
  address: r.address,
  status: r.status,
  attempts: r.attempts,
  nextAttemptAt: r.next_attempt_at,
  lastCode: r.last_code,
  lastResponse: r.last_response,
  leaseOwner: r.lease_until == null ? null : r.lease_owner,
});

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
  tags: tagsOf(r.tags),
  ...(r.phase === 'async' && { phase: 'async' as const }),
});

/** A JSON tag list column as stored (NULL: none). */
export const tagsOf = (json: string | null): string[] => (json ? (JSON.parse(json) as string[]) : []);

export const toDomain = (r: DomainRow): DomainRecord => ({
  name: r.name,
  selector: r.selector,
  algorithm: r.algorithm,
  privateKeyPem: r.private_key_pem,
  publicKey: r.public_key,
  verificationToken: r.verification_token,
  verified: r.verified_at != null,
  checks: r.checks ? (JSON.parse(r.checks) as Record<string, unknown>) : null,
  createdAt: r.created_at,
  verifiedAt: r.verified_at,
});

export const toCredential = (r: CredentialRow, domains: string[], oldApiKeyHashes: string[]): CredentialRecord => ({
  name: r.name,
  username: r.username,
  passwordHash: r.password_hash,
  domains,
  createdAt: r.created_at,
  revokedAt: r.revoked_at,
  ...(r.old_secret_until !== null && {
    rotation: {
      until: r.old_secret_until,
      oldPasswordHash: r.old_password_hash!,
      oldApiKeyHashes,
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
  events: r.events.split(',') as RecipientStatus[],
  createdAt: r.created_at,
});
