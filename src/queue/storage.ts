/**
 * Storage, as the pipeline sees it: one small asynchronous interface per concern, each stage
 * taking only the ones it uses. Backends (sqlite/, postgres/) store and fetch; the rules about
 * what to store (a hard bounce suppresses, which webhooks hear of an event, quotas) live in the
 * stages. The contract every backend must meet is test/storage/contract.ts.
 */

export type RecipientStatus = 'queued' | 'delivered' | 'deferred' | 'bounced' | 'expired' | 'suppressed' | 'complained' | 'unsubscribed';
export const EVENT_STATUSES: readonly RecipientStatus[] = [
  'queued',
  'delivered',
  'deferred',
  'bounced',
  'expired',
  'suppressed',
  'complained',
  'unsubscribed',
];
/** The statuses a webhook can subscribe to: every one but 'queued' (the submitter's own answer). */
export const WEBHOOK_STATUSES: readonly RecipientStatus[] = EVENT_STATUSES.filter((s) => s !== 'queued');
export const FINAL_STATUSES: readonly RecipientStatus[] = ['delivered', 'bounced', 'expired', 'suppressed'];
/** The statuses a recipient row can hold (the others are events only). */
export const RECIPIENT_STATUSES: readonly RecipientStatus[] = ['queued', 'delivered', 'deferred', 'bounced', 'expired', 'suppressed'];

// ---- Queue ---------------------------------------------------------------------------------------

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
  /** Recorded with the message; a key already recorded since `idempotencySince` (absent: ever) makes this a duplicate. */
  idempotencyKeys?: string[];
  idempotencySince?: number;
  /** Recipient caps checked and counted in the same transaction, so nodes sharing a database cannot overshoot. */
  quota?: { daily: number | null; monthly: number | null };
}

export type EnqueueResult =
  | { status: 'queued' }
  /** An equal submission was committed under one of the idempotency keys: nothing was queued. */
  | { status: 'duplicate'; queueId: string }
  /** Committing would pass the credential's daily or monthly quota: nothing was queued. */
  | { status: 'over-quota'; period: 'daily' | 'monthly' };

/** One message's recipients at one domain, claimed for one delivery attempt. */
export interface DeliveryJob {
  queueId: string;
  messageId: string;
  credential: string;
  mailFrom: string;
  domain: string;
  recipients: { id: number; address: string; attempts: number }[];
  receivedAt: number;
  expiresAt: number;
}

export interface RecipientOutcome {
  recipientId: number;
  status: 'delivered' | 'deferred' | 'bounced' | 'expired';
  smtpCode?: number;
  response?: string;
  category?: string;
  /** For deferred: when to try again. */
  nextAttemptAt?: number;
  /** The next hop refused our envelope sender, so the reply says nothing about the recipient. */
  senderRefused?: boolean;
}

/** What one finished attempt leaves behind, written together. */
export interface AttemptRecord {
  job: DeliveryJob;
  outcomes: RecipientOutcome[];
  /** Suppressions the bounces stage decided on for these outcomes. */
  suppressions: NewSuppression[];
}

/** Who holds a claim: the node's name, and how long the claim lasts unless renewed. */
export interface Lease {
  owner: string;
  ms: number;
}

export interface QueuedRecipient {
  address: string;
  status: RecipientStatus;
  attempts: number;
  nextAttemptAt: number | null;
  lastCode: number | null;
  lastResponse: string | null;
  leaseOwner: string | null;
}

export interface QueuedMessage {
  queueId: string;
  messageId: string;
  credential: string;
  mailFrom: string;
  size: number;
  receivedAt: number;
  recipients: QueuedRecipient[];
}

export interface Stats {
  byStatus: Record<RecipientStatus, number>;
  byDomain: Record<string, Partial<Record<RecipientStatus, number>>>;
  queue: { messages: number; recipientsPending: number; oldestReceivedAt: number | null };
}

export interface MessageQueue {
  /** Resolves once the message, its recipients, their `queued` events, usage and keys are durably committed. */
  enqueue(message: NewMessage): Promise<EnqueueResult>;
  /**
   * Claims up to `limit` jobs: due recipients (queued or deferred, next attempt reached, no live
   * lease) grouped by message and domain, leased to `lease.owner` until now + lease.ms.
   */
  claimDue(now: number, limit: number, lease: Lease): Promise<DeliveryJob[]>;
  /** Extends every live lease `owner` holds to `until` (the node's heartbeat). */
  renewLeases(owner: string, until: number): Promise<void>;
  /** Drops every lease `owner` holds (a node starting again under its name); returns how many. */
  releaseLeases(owner: string): Promise<number>;
  /** The stored message bytes, or undefined once deleted or purged. */
  body(queueId: string): Promise<Buffer | undefined>;
  /** Recipient state and events of finished attempts; not fsync'd (a lost outcome means one more delivery). */
  recordAttempt(attempt: AttemptRecord): Promise<void>;
  /** The earliest time a pending recipient is due or a lease runs out, for the scheduler's sleep. */
  nextDueAt(): Promise<number | null>;
  /** Messages with recipients not yet final, oldest first. */
  pending(): Promise<QueuedMessage[]>;
  message(queueId: string): Promise<QueuedMessage | undefined>;
  /**
   * Makes every pending recipient of the message due now, except those under a live lease (an
   * attempt is delivering them: its outcome decides). False if no such message.
   */
  retry(queueId: string): Promise<boolean>;
  /** Removes a message and all its recipients. False if no such message. */
  delete(queueId: string): Promise<boolean>;
  stats(): Promise<Stats>;
  /** Retention: removes up to `limit` messages received before `before` whose recipients are all final. */
  purgeFinished(before: number, limit: number): Promise<number>;
}

// ---- Events --------------------------------------------------------------------------------------

export interface NewEvent {
  queueId: string;
  messageId: string;
  /** The credential that submitted the message ('' for Relay's own, e.g. a DSN). */
  credential: string;
  recipient: string;
  status: RecipientStatus;
  smtpCode: number | null;
  response: string | null;
  category: string | null;
  at?: number;
}

export interface EventRecord {
  id: number;
  queueId: string;
  messageId: string;
  credential: string;
  recipient: string;
  domain: string;
  status: RecipientStatus;
  smtpCode: number | null;
  response: string | null;
  category: string | null;
  at: number;
  /** 'async' for what the receiving side reported after accepting the message (a later bounce, a complaint, an unsubscribe). */
  phase?: 'async';
}

export interface EventQuery {
  /** Cursor: only events with a greater id. */
  afterId?: number;
  /** Epoch ms, inclusive. */
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

export interface StatsBucket {
  start: number;
  domain: string;
  status: RecipientStatus;
  count: number;
}

export interface EventLog {
  /** An event not tied to a delivery attempt (e.g. suppressed at RCPT); webhooks subscribed to its status hear of it. */
  record(event: NewEvent): Promise<void>;
  query(query: EventQuery): Promise<EventRecord[]>;
  /** Event counts per time bucket, recipient domain and status ("queued" = accepted). */
  buckets(from: number, to: number, bucketMs: number, credential?: string): Promise<StatsBucket[]>;
  /** The latest failure (bounced, deferred or expired) per recipient domain in the window. */
  lastFailures(from: number, to: number, credential?: string): Promise<EventRecord[]>;
  /** Retention: removes up to `limit` events older than `before`. */
  purge(before: number, limit: number): Promise<number>;
}

// ---- Suppressions --------------------------------------------------------------------------------

export interface NewSuppression {
  address: string;
  reason: string;
  /** The credential it applies to; null = every credential. */
  credential: string | null;
}

export interface Suppression extends NewSuppression {
  createdAt: number;
}

export interface SuppressionList {
  /** True when the address is suppressed for every credential or for this one. */
  isSuppressed(address: string, credential: string): Promise<boolean>;
  /** All entries, or (credential given) only those scoped to it, without the global ones. */
  list(filter?: { credential?: string }): Promise<Suppression[]>;
  /** False if the address was already on the list in that scope. */
  add(entry: NewSuppression): Promise<boolean>;
  /** Removes the entry in that scope (credential null = the global one). */
  remove(address: string, credential: string | null): Promise<boolean>;
}

// ---- Feedback from the receiving side -------------------------------------------------------------

/** The message and recipient a report or an unsubscribe is about. */
export interface FeedbackTarget {
  queueId: string;
  messageId: string;
  credential: string;
  recipient: string;
}

export interface FeedbackStore {
  /** The key that signs return-path and unsubscribe tokens: made by the first node to ask, then the same for every node. */
  secret(): Promise<Buffer>;
  /** A recipient of a message by its row id (what a return-path token names). */
  recipient(queueId: string, recipientId: number): Promise<FeedbackTarget | undefined>;
  /** The messages with this queue id or this Message-ID header, each with every recipient. */
  messages(ref: { queueId?: string; messageId?: string }): Promise<(Omit<FeedbackTarget, 'recipient'> & { recipients: string[] })[]>;
  /**
   * Records an `async` event (webhooks subscribed to its status hear of it) and, when given, the
   * suppression it leads to, in one transaction.
   */
  record(event: NewEvent, suppression: NewSuppression | null): Promise<void>;
  /** Whether the credential's messages get one-click unsubscribe headers. */
  listUnsubscribe(credential: string): Promise<boolean>;
  setListUnsubscribe(credential: string, on: boolean): Promise<void>;
}

// ---- Sender domains ------------------------------------------------------------------------------

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
  createdAt: number;
  verifiedAt: number | null;
}

export type NewDomain = Omit<DomainRecord, 'createdAt' | 'verifiedAt' | 'verified' | 'checks'>;

export interface DomainStore {
  add(domain: NewDomain): Promise<void>;
  get(name: string): Promise<DomainRecord | undefined>;
  list(): Promise<DomainRecord[]>;
  setVerification(name: string, verified: boolean, checks: Record<string, unknown>): Promise<void>;
  /** Also unlinks the domain from every credential. */
  remove(name: string): Promise<boolean>;
}

// ---- Credentials and API keys --------------------------------------------------------------------

export interface CredentialRecord {
  name: string;
  username: string;
  passwordHash: string;
  domains: string[];
  createdAt: number;
  revokedAt: number | null;
}

export type NewCredential = Omit<CredentialRecord, 'createdAt' | 'revokedAt'>;

export interface CredentialStore {
  add(credential: NewCredential): Promise<void>;
  /** Active (not revoked) credential by its SMTP username. */
  byUsername(username: string): Promise<CredentialRecord | undefined>;
  get(name: string): Promise<CredentialRecord | undefined>;
  list(): Promise<CredentialRecord[]>;
  revoke(name: string): Promise<boolean>;
  /** Stores the SHA-256 of an API key for the credential. */
  addApiKey(credential: string, keyHash: string): Promise<void>;
  /** The active credential that owns the key with this hash. */
  byApiKey(keyHash: string): Promise<CredentialRecord | undefined>;
}

// ---- Limits: quotas and their usage, rate buckets, login failures ---------------------------------

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

export interface LimitStore {
  /** All null when the credential has no limits. */
  get(credential: string): Promise<CredentialLimits>;
  /** Changes only the fields given (null clears one). */
  set(credential: string, limits: Partial<CredentialLimits>): Promise<void>;
  /** Recipients committed in the UTC day and month that contain `at`. */
  usage(credential: string, at: number): Promise<CredentialUsage>;
  /**
   * Takes `n` tokens from the credential's bucket (refilled at `rate`, holding at most one
   * period's worth), all or none. Shared by every node using the database.
   */
  takeTokens(credential: string, rate: { count: number; perSeconds: number }, n: number, now: number): Promise<boolean>;
  /** Records a failed login under `key` (an IP, a username and IP, a username) and returns the failures since `since`. */
  recordLoginFailure(key: string, at: number, since: number): Promise<number>;
  /** Failures under `key` since `since`, and the latest one's time. */
  loginFailures(key: string, since: number): Promise<{ count: number; lastAt: number | null }>;
  clearLoginFailures(key: string): Promise<void>;
  /** Forgets login failures before `before` and idempotency keys recorded before `before`. */
  prune(before: number): Promise<void>;
}

export interface IdempotencyStore {
  /** The queue id of a submission recorded under `key` by the credential since `since`, if any. */
  find(credential: string, key: string, since: number): Promise<string | undefined>;
}

// ---- Templates -----------------------------------------------------------------------------------

export interface TemplateRecord {
  name: string;
  version: number;
  subject: string;
  text: string | null;
  html: string | null;
  createdAt: number;
}

export interface TemplateStore {
  /** Adds the next version of the template (1 if new); returns the version. */
  add(template: Pick<TemplateRecord, 'name' | 'subject' | 'text' | 'html'>): Promise<number>;
  /** The given version, or the latest. */
  get(name: string, version?: number): Promise<TemplateRecord | undefined>;
  /** The latest version of every template. */
  list(): Promise<TemplateRecord[]>;
}

// ---- Webhooks and their outbox -------------------------------------------------------------------

export interface WebhookRecord {
  id: number;
  url: string;
  /** HMAC-SHA256 key for the signature header. */
  secret: string;
  events: RecipientStatus[];
  createdAt: number;
}

/** One event owed to one webhook. Outbox rows are written in the transaction that records the event. */
export interface OutboxEntry {
  id: number;
  webhookId: number;
  url: string;
  secret: string;
  event: EventRecord;
  attempts: number;
}

export interface WebhookStore {
  add(url: string, secret: string, events: RecipientStatus[]): Promise<WebhookRecord>;
  list(): Promise<WebhookRecord[]>;
  remove(id: number): Promise<boolean>;
  /** Claims due outbox rows for `lease.ms` so that no other node posts them meanwhile. */
  claimDue(now: number, limit: number, lease: Lease): Promise<OutboxEntry[]>;
  delivered(outboxId: number): Promise<void>;
  failed(outboxId: number, error: string, nextAttemptAt: number): Promise<void>;
  backlog(): Promise<{ count: number; oldestAt: number | null }>;
}

// ---- Nodes ---------------------------------------------------------------------------------------

export interface NodeRecord {
  name: string;
  host: string;
  pid: number;
  startedAt: number;
  heartbeatAt: number;
  /** Recipients this node holds leased right now. */
  leased: number;
}

export interface NodeRegistry {
  /**
   * Registers this process as node `name`. Throws NodeNameInUseError when a live process
   * already runs under that name.
   */
  register(node: { name: string; host: string; pid: number; at: number }): Promise<void>;
  heartbeat(name: string, at: number): Promise<void>;
  /** Forgets a node that stopped cleanly. */
  unregister(name: string): Promise<void>;
  list(now: number): Promise<NodeRecord[]>;
}

export class NodeNameInUseError extends Error {
  constructor(name: string, where: string) {
    super(`node name ${name} is in use by a running relay (${where}); give this node another node_name`);
  }
}

// ---- Failures a stage tells apart ----------------------------------------------------------------

/** A storage failure that will not pass by retrying at once: the disk or the database is full. */
export class StorageFullError extends Error {
  constructor(cause: unknown) {
    super('storage is full', { cause });
  }
}

// ---- All of it ----------------------------------------------------------------------------------

export interface Storage {
  /** `sqlite` or `postgres`, for logs and `relay nodes`. */
  readonly kind: 'sqlite' | 'postgres';
  readonly queue: MessageQueue;
  readonly events: EventLog;
  readonly suppressions: SuppressionList;
  readonly domains: DomainStore;
  readonly credentials: CredentialStore;
  readonly limits: LimitStore;
  readonly idempotency: IdempotencyStore;
  readonly templates: TemplateStore;
  readonly webhooks: WebhookStore;
  readonly nodes: NodeRegistry;
  readonly feedback: FeedbackStore;
  /**
   * Where the backend can tell (PostgreSQL's LISTEN/NOTIFY), calls `listener` when any node queues
   * mail or retries a message, so an idle scheduler can wake early; only a hint, polling
   * nextDueAt() stays the rule. Absent where every submission is in this process (SQLite).
   * Returns the unsubscribe.
   */
  onWork?(listener: () => void): () => void;
  /** Rejects unless a write transaction can be started (readiness probe). */
  checkWritable(): Promise<void>;
  /** Waits for pending writes, then closes the connection(s). */
  close(): Promise<void>;
}
