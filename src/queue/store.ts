/**
 * The storage interface behind the whole pipeline: the message queue with per-recipient state,
 * the event log, the suppression list, sender domains and credentials. SQLite implements it
 * today (sqlite.ts); a shared database for several nodes can implement it later without the
 * submission, delivery or CLI code changing.
 */

export type RecipientStatus = 'queued' | 'delivered' | 'deferred' | 'bounced' | 'expired' | 'suppressed';
export const FINAL_STATUSES: readonly RecipientStatus[] = ['delivered', 'bounced', 'expired', 'suppressed'];

export interface NewMessage {
  queueId: string;
  messageId: string;
  credential: string;
  mailFrom: string;
  /** Recipients to deliver to (suppressed ones are recorded as events, not passed here). */
  recipients: string[];
  /** The signed message as it will leave Relay (CRLF line endings). */
  body: Buffer;
  receivedAt: number;
  expiresAt: number;
  /** Idempotency keys recorded with the message (see findIdempotentSubmission). */
  idempotencyKeys?: string[];
}

/** One message's recipients at one domain, claimed for one delivery attempt. */
export interface DeliveryJob {
  queueId: string;
  messageId: string;
  mailFrom: string;
  domain: string;
  recipients: { id: number; address: string; attempts: number }[];
  receivedAt: number;
  expiresAt: number;
}

export interface RecipientOutcome {
  recipientId: number;
  status: Exclude<RecipientStatus, 'queued'>;
  smtpCode?: number;
  response?: string;
  category?: string;
  /** For deferred: when to try again. */
  nextAttemptAt?: number;
}

export interface QueueEntry {
  queueId: string;
  messageId: string;
  credential: string;
  mailFrom: string;
  size: number;
  receivedAt: number;
  recipients: {
    address: string;
    status: RecipientStatus;
    attempts: number;
    nextAttemptAt: number | null;
    lastCode: number | null;
    lastResponse: string | null;
  }[];
}

export interface EventRow {
  queue_id: string;
  message_id: string;
  recipient: string;
  status: RecipientStatus;
  smtp_code: number | null;
  response: string | null;
  category: string | null;
  at: string;
}

export interface EventFilter {
  recipient?: string;
  status?: RecipientStatus;
  queueId?: string;
  limit?: number;
}

export interface Suppression {
  address: string;
  reason: string;
  createdAt: string;
}

export interface DomainRecord {
  name: string;
  selector: string;
  algorithm: 'rsa' | 'ed25519';
  privateKeyPem: string;
  /** The p= value of the DKIM TXT record. */
  publicKey: string;
  verificationToken: string;
  verified: boolean;
  /** Last `domain verify` result per check, as JSON-able data. */
  checks: Record<string, unknown> | null;
  createdAt: string;
  verifiedAt: string | null;
}

export interface CredentialRecord {
  name: string;
  username: string;
  passwordHash: string;
  domains: string[];
  createdAt: string;
  revokedAt: string | null;
}

/** Per-credential quotas, counted in recipients; null = unlimited. */
export interface CredentialLimits {
  /** Token bucket: `count` recipients per `perSeconds` seconds. */
  rate: { count: number; perSeconds: number } | null;
  daily: number | null;
  monthly: number | null;
}

export interface CredentialUsage {
  day: number;
  month: number;
}

export interface Stats {
  byStatus: Record<RecipientStatus, number>;
  byDomain: Record<string, Partial<Record<RecipientStatus, number>>>;
  queue: { messages: number; recipientsPending: number; oldestReceivedAt: string | null };
}

// ---- HTTP API, templates and webhooks (issue 5) ------------------------------------------------

export interface TemplateRecord {
  name: string;
  version: number;
  subject: string;
  text: string | null;
  html: string | null;
  createdAt: string;
}

export interface WebhookRecord {
  id: number;
  url: string;
  /** HMAC-SHA256 key for the signature header. */
  secret: string;
  events: RecipientStatus[];
  createdAt: string;
}

export interface OutboxEntry {
  id: number;
  webhookId: number;
  url: string;
  secret: string;
  eventId: number;
  /** The JSON body, fixed when the event was recorded. */
  payload: string;
  attempts: number;
}

/** An event with its id (the API's cursor) and recipient domain. */
export interface ApiEvent extends EventRow {
  id: number;
  domain: string;
}

export interface EventQuery {
  /** Cursor: only events with a greater id. */
  afterId?: number;
  /** Epoch ms. */
  since?: number;
  status?: RecipientStatus;
  domain?: string;
  recipient?: string;
  queueId?: string;
  /** Only events of messages submitted with this credential. */
  credential?: string;
  newestFirst?: boolean;
  limit: number;
}

export interface MessageRecord {
  queueId: string;
  messageId: string;
  credential: string;
  mailFrom: string;
  size: number;
  receivedAt: string;
  recipients: {
    address: string;
    status: RecipientStatus;
    attempts: number;
    nextAttemptAt: string | null;
    lastCode: number | null;
    lastResponse: string | null;
  }[];
}

export interface StatsBucket {
  start: string;
  domain: string;
  status: RecipientStatus;
  count: number;
}

export interface Store {
  // Queue
  /**
   * Resolves once the message and its recipients are durably committed (group-committed). The
   * same transaction counts the recipients in the credential's daily and monthly usage and
   * records the message's idempotency keys.
   */
  enqueue(message: NewMessage): Promise<void>;
  /** Records an event that is not tied to a queued recipient row (e.g. suppressed at RCPT). */
  recordEvent(event: Omit<EventRow, 'at'> & { at?: number }): Promise<void>;
  /**
   * Claims up to `limit` jobs: the due recipients (queued or deferred, next attempt reached, no
   * live lease) of one message at one recipient domain each, leased until `now + leaseMs`.
   */
  claimDue(now: number, limit: number, leaseMs: number): DeliveryJob[];
  /** The stored message bytes, or undefined if the message was deleted meanwhile. */
  body(queueId: string): Buffer | undefined;
  /** Applies outcomes in one transaction: recipient state, events, suppressions for bounces. */
  recordOutcomes(job: DeliveryJob, outcomes: RecipientOutcome[]): void;
  /**
   * Performance (issue 4): what recordOutcomes does, in one transaction with the outcomes of
   * other attempts that finish in the same tick, and not fsync'd (a lost outcome means one more
   * delivery, never a lost message); resolves once committed.
   */
  queueOutcomes(job: DeliveryJob, outcomes: RecipientOutcome[]): Promise<void>;
  /** The earliest next attempt among pending recipients, for the scheduler's sleep. */
  nextDueAt(): number | null;
  listQueue(): QueueEntry[];
  /** Makes every pending recipient of the message due now. False if no such message. */
  retry(queueId: string): boolean;
  /** Removes a message and its pending recipients. False if no such message. */
  delete(queueId: string): boolean;
  events(filter?: EventFilter): EventRow[];
  stats(): Stats;

  // Suppression list
  isSuppressed(address: string): boolean;
  listSuppressions(): Suppression[];
  /** Returns false if the address was already on the list. */
  addSuppression(address: string, reason: string): boolean;
  removeSuppression(address: string): boolean;

  // Sender domains
  addDomain(domain: Omit<DomainRecord, 'createdAt' | 'verifiedAt' | 'verified' | 'checks'>): void;
  getDomain(name: string): DomainRecord | undefined;
  listDomains(): DomainRecord[];
  setDomainVerification(name: string, verified: boolean, checks: Record<string, unknown>): void;
  removeDomain(name: string): boolean;

  // Credentials
  addCredential(cred: Omit<CredentialRecord, 'createdAt' | 'revokedAt'>): void;
  /** Active (not revoked) credential by its SMTP username. */
  credentialByUsername(username: string): CredentialRecord | undefined;
  getCredential(name: string): CredentialRecord | undefined;
  listCredentials(): CredentialRecord[];
  revokeCredential(name: string): boolean;

  // HTTP API, templates and webhooks (issue 5); implemented in sqlite-surface.ts
  /** Stores the SHA-256 of an API key for the credential. */
  addApiKey(credential: string, keyHash: string): void;
  /** The active credential that owns the key with this hash. */
  credentialByApiKey(keyHash: string): CredentialRecord | undefined;
  /** Adds the next version of the template (1 if new); returns the version. */
  addTemplate(template: Pick<TemplateRecord, 'name' | 'subject' | 'text' | 'html'>): number;
  /** The given version, or the latest. */
  getTemplate(name: string, version?: number): TemplateRecord | undefined;
  listTemplates(): TemplateRecord[];
  addWebhook(url: string, secret: string, events: RecipientStatus[]): WebhookRecord;
  listWebhooks(): WebhookRecord[];
  removeWebhook(id: number): boolean;
  /** Outbox rows due for (another) delivery attempt. Rows are written with their events. */
  dueWebhookDeliveries(now: number, limit: number): OutboxEntry[];
  webhookDelivered(outboxId: number): void;
  webhookFailed(outboxId: number, error: string, nextAttemptAt: number): void;
  webhookBacklog(): { count: number; oldestAt: number | null };
  queryEvents(query: EventQuery): ApiEvent[];
  getMessage(queueId: string): MessageRecord | undefined;
  eventBuckets(from: number, to: number, bucketMs: number, credential?: string): StatsBucket[];
  /** The latest failure per recipient domain in the window. */
  lastFailures(from: number, to: number, credential?: string): ApiEvent[];
  /** Throws unless a write transaction can be started (readiness probe). */
  checkWritable(): void;

  // Abuse protection (issue 3): credential quotas, their usage, idempotent submission
  /** All null when the credential has no limits. */
  getCredentialLimits(name: string): CredentialLimits;
  /** Changes only the fields given (null clears one). */
  setCredentialLimits(name: string, limits: Partial<CredentialLimits>): void;
  /** Recipients committed in the UTC day and month that contain `at`. */
  credentialUsage(name: string, at: number): CredentialUsage;
  /** The queue id of a submission recorded under `key` by the credential since `since`, if any. */
  findIdempotentSubmission(credential: string, key: string, since: number): string | undefined;
  /** Forgets idempotency keys recorded before `before`. */
  pruneIdempotencyKeys(before: number): void;

  close(): void;
}
