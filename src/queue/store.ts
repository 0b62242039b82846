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

export interface Stats {
  byStatus: Record<RecipientStatus, number>;
  byDomain: Record<string, Partial<Record<RecipientStatus, number>>>;
  queue: { messages: number; recipientsPending: number; oldestReceivedAt: string | null };
}

export interface Store {
  // Queue
  /** Resolves once the message and its recipients are durably committed (group-committed). */
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

  close(): void;
}
