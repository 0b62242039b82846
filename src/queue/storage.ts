/**
 * Storage, as the pipeline sees it: one small asynchronous interface per concern, each stage
 * taking only the ones it uses. Backends (sqlite/, postgres/) store and fetch; the rules about
 * what to store (a hard bounce suppresses, which webhooks hear of an event, quotas) live in the
 * stages. The contract every backend must meet is test/storage/contract.ts.
 */

import type { MessageParts } from '../envelope/header.js';

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
  /**
   * The signed message as it will leave Relay (CRLF line endings), in the pieces it was received
   * in: a big message is stored in pieces too (pieces.ts), never joined into one Buffer.
   */
  body: MessageParts;
  receivedAt: number;
  expiresAt: number;
  /** Recorded with the message; a key already recorded since `idempotencySince` (absent: ever) makes this a duplicate. */
  idempotencyKeys?: string[];
  idempotencySince?: number;
  /** Recipient caps checked and counted in the same transaction, so nodes sharing a database cannot overshoot. */
  quota?: { daily: number | null; monthly: number | null };
  /** The submitter's tags, stored with the message and copied onto each of its events. */
  tags?: string[];
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
  /** The session the outcome came from, when one was opened. */
  tls?: TlsInfo;
}

/** How a delivery's session was protected, recorded with its event. */
export interface TlsInfo {
  /** The negotiated protocol ("TLSv1.3"), null in cleartext. */
  version: string | null;
  cipher: string | null;
  /** The MX certificate was authenticated (by DANE, or by a CA and the MX name). */
  verified: boolean;
  /** The recipient domain's policy that applied. */
  policy: 'none' | 'sts' | 'dane';
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
  /** The stored message, in its stored pieces; undefined once deleted or purged. */
  body(queueId: string): Promise<MessageParts | undefined>;
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
  tls?: TlsInfo | null;
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
  /** For outcomes of a delivery attempt that opened a session. */
  tls?: TlsInfo;
  at: number;
  /** The tags of the message, as it was submitted (none for events recorded before the message, e.g. suppressed at RCPT). */
  tags: string[];
  /** 'async' for what the receiving side reported after accepting the message (a later bounce, a complaint, an unsubscribe). */
  phase?: 'async';
}

export interface EventQuery {
  /** Cursor: only events with a greater id. */
  afterId?: number;
  /** Epoch ms, inclusive. */
  since?: number;
  /** Epoch ms, exclusive. */
  until?: number;
  status?: RecipientStatus;
  domain?: string;
  recipient?: string;
  queueId?: string;
  /** Only events of messages submitted with this credential. */
  credential?: string;
  /** Only events of messages carrying this tag. */
  tag?: string;
  newestFirst?: boolean;
  limit: number;
}

/** A window of events to read in pages: at in [from, to), optionally one credential's. */
export interface EventWindow {
  from: number;
  to: number;
  credential?: string;
}

export interface TagCount {
  tag: string;
  status: RecipientStatus;
  count: number;
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
  /** Event counts per time bucket, recipient domain and status ("queued" = accepted); `tag`: only events carrying it. */
  buckets(from: number, to: number, bucketMs: number, credential?: string, tag?: string): Promise<StatsBucket[]>;
  /** The latest failure (bounced, deferred or expired) per recipient domain in the window. */
  lastFailures(from: number, to: number, credential?: string, tag?: string): Promise<EventRecord[]>;
  /** Event counts per tag and status in the window (an event with several tags counts under each). */
  tagCounts(from: number, to: number, credential?: string): Promise<TagCount[]>;
  /**
   * The events of a window, oldest first, as pages of at most `pageSize` read one at a time by
   * id (a cursor, not an offset): a caller streaming them holds one page, whatever the window's size.
   */
  pages(window: EventWindow, pageSize: number): AsyncIterable<EventRecord[]>;
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

// ---- DKIM keys -----------------------------------------------------------------------------------

/**
 * pending: generated, its record to be published; active: signs; retiring: no longer signs, its
 * record stays published until retireAt so mail in flight still verifies; retired: its private
 * key removed, the record left to delete.
 */
export type DkimKeyState = 'pending' | 'active' | 'retiring' | 'retired';

export interface DkimKeyRecord {
  domain: string;
  selector: string;
  algorithm: 'rsa' | 'ed25519';
  /** null once retired. */
  privateKeyPem: string | null;
  /** The p= value of the DKIM TXT record. */
  publicKey: string;
  state: DkimKeyState;
  /** Activate as soon as the record is found published. */
  autoActivate: boolean;
  createdAt: number;
  /** When a lookup last found the record published as expected. */
  publishedAt: number | null;
  activatedAt: number | null;
  retireAt: number | null;
}

export type NewDkimKey = Pick<DkimKeyRecord, 'domain' | 'selector' | 'algorithm' | 'publicKey' | 'autoActivate'> & {
  privateKeyPem: string;
  state: 'pending' | 'active';
};

export interface DkimKeyStore {
  /** Adds keys of an existing domain, all or none; throws if a selector is taken. */
  add(keys: NewDkimKey[], at: number): Promise<void>;
  /** Every key of the domain, by selector. */
  list(domain: string): Promise<DkimKeyRecord[]>;
  /** The domain's signing keys. */
  active(domain: string): Promise<DkimKeyRecord[]>;
  /** Pending keys of every domain waiting to be activated when published. */
  pendingAuto(): Promise<DkimKeyRecord[]>;
  /** Records that the key's DNS record was found published (at) or not (null). */
  setPublished(domain: string, selector: string, at: number | null): Promise<void>;
  /**
   * In one transaction: the domain's pending keys become active and its active ones retiring
   * until `retireAt`; the domain record shows the first new key. False if none was pending.
   */
  activatePending(domain: string, at: number, retireAt: number): Promise<boolean>;
  /** Retiring keys whose time has come lose their private key and become retired; returns them. */
  retireDue(now: number): Promise<DkimKeyRecord[]>;
  /** Forgets a retired key (its record is gone from DNS). */
  forget(domain: string, selector: string): Promise<boolean>;
}

// ---- Credentials and API keys --------------------------------------------------------------------

export interface CredentialRecord {
  name: string;
  username: string;
  passwordHash: string;
  domains: string[];
  createdAt: number;
  revokedAt: number | null;
  /** Present once the credential's secrets have been rotated. */
  rotation?: CredentialRotation;
}

/** The secrets a rotation replaced: they keep working until `until`, and their logins are counted. */
export interface CredentialRotation {
  until: number;
  oldPasswordHash: string;
  /** SHA-256 hashes of the API keys the rotation retired (still accepted until `until`). */
  oldApiKeyHashes: string[];
  oldLogins: number;
  lastOldLoginAt: number | null;
}

export type NewCredential = Omit<CredentialRecord, 'createdAt' | 'revokedAt' | 'rotation'>;

export interface CredentialStore {
  add(credential: NewCredential): Promise<void>;
  /** Active (not revoked) credential by its SMTP username. */
  byUsername(username: string): Promise<CredentialRecord | undefined>;
  get(name: string): Promise<CredentialRecord | undefined>;
  list(): Promise<CredentialRecord[]>;
  revoke(name: string): Promise<boolean>;
  /** Stores the SHA-256 of an API key for the credential. */
  addApiKey(credential: string, keyHash: string): Promise<void>;
  /** The active credential that owns the key with this hash, unless a rotation retired the key and its grace has ended. */
  byApiKey(keyHash: string): Promise<CredentialRecord | undefined>;
  /**
   * Replaces the password (the current one becomes the old one until `until`, replacing any
   * earlier old one) and, with `apiKeyHash`, retires the active API keys at `until` and adds
   * that one. False if no active credential has that name.
   */
  rotate(name: string, rotation: { passwordHash: string; apiKeyHash?: string; until: number }): Promise<boolean>;
  /** Counts a login made with a secret the last rotation retired. */
  recordOldSecretLogin(name: string, at: number): Promise<void>;
}

// ---- What a credential may send: sender identities, Reply-To domains, sandbox -------------------

export interface CredentialPolicy {
  /** Addresses it may use as envelope sender and header From/Sender (lower-cased); empty: any address of its domains. */
  senders: string[];
  /** Domains a Reply-To may name (lower-cased); empty: any Reply-To. */
  replyToDomains: string[];
  /** A sandbox credential sends only to `allowedRecipients`. */
  sandbox: boolean;
  /** Addresses and `@domain` entries (lower-cased) a sandbox credential may send to. */
  allowedRecipients: string[];
}

export const OPEN_POLICY: CredentialPolicy = { senders: [], replyToDomains: [], sandbox: false, allowedRecipients: [] };

export interface CredentialPolicyStore {
  /** OPEN_POLICY when none was set. */
  get(credential: string): Promise<CredentialPolicy>;
  /** Changes only the fields given. */
  set(credential: string, change: Partial<CredentialPolicy>): Promise<void>;
  /** Every credential with a policy set, by name. */
  list(): Promise<Map<string, CredentialPolicy>>;
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

export interface LoginFailures {
  count: number;
  lastAt: number | null;
}

/** Orders the per-key rows a login failure query returns as `keys`, a key without failures as none. */
export function failuresByKey(keys: readonly string[], rows: { key: string; count: number; lastAt: number | null }[]): LoginFailures[] {
  const found = new Map(rows.map((row) => [row.key, { count: row.count, lastAt: row.lastAt }]));
  return keys.map((key) => found.get(key) ?? { count: 0, lastAt: null });
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
  /** For each key, in order, its failures since `since` and the latest one's time (one statement for all, as every AUTH asks for several). */
  loginFailures(keys: readonly string[], since: number): Promise<LoginFailures[]>;
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
  /** Removes every version; false if there was none. */
  remove(name: string): Promise<boolean>;
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

// ---- Operators ----------------------------------------------------------------------------------

/** What an operator token may do (the rules are in src/operators/roles.ts). */
export type OperatorRole = 'admin' | 'sender-admin' | 'template-editor' | 'viewer';
export const OPERATOR_ROLES: readonly OperatorRole[] = ['admin', 'sender-admin', 'template-editor', 'viewer'];

export interface OperatorRecord {
  name: string;
  role: OperatorRole;
  /** The public part of the token, to find the operator by. */
  tokenId: string;
  /** SHA-256 (hex) of the token's secret part. */
  tokenHash: string;
  createdAt: number;
  /** When the current token was issued (createdAt until the first rotation). */
  tokenIssuedAt: number;
  revokedAt: number | null;
}

export type NewOperator = Pick<OperatorRecord, 'name' | 'role' | 'tokenId' | 'tokenHash'>;

export interface OperatorStore {
  /** False when the name is taken, by a revoked operator too. */
  add(operator: NewOperator, at: number): Promise<boolean>;
  get(name: string): Promise<OperatorRecord | undefined>;
  /** The active (not revoked) operator whose token has this id. */
  byTokenId(tokenId: string): Promise<OperatorRecord | undefined>;
  list(): Promise<OperatorRecord[]>;
  /** False when there is no active operator of that name. */
  revoke(name: string, at: number): Promise<boolean>;
  /** Replaces an active operator's token; false when there is no active operator of that name. */
  replaceToken(name: string, token: { tokenId: string; tokenHash: string }, at: number): Promise<boolean>;
}

// ---- Audit trail ---------------------------------------------------------------------------------

export interface NewAuditEntry {
  at: number;
  actor: string;
  action: string;
  target: string;
  /** Canonical JSON (src/audit/chain.ts), stored as given so that the hash can be checked again. */
  change: string;
}

export interface AuditEntry extends NewAuditEntry {
  /** 1, 2, 3, ... without gaps. */
  seq: number;
  /** The previous row's hash ('' for the first row). */
  prevHash: string;
  hash: string;
}

export interface AuditQuery {
  afterSeq?: number;
  /** Epoch ms, inclusive. */
  since?: number;
  actor?: string;
  limit: number;
}

export interface AuditLog {
  /**
   * Appends a row after the last one, holding a lock that every writer (every process, every
   * node) takes, so the chain never forks: `hash` gets the previous row's hash and the new
   * row and returns the new row's.
   */
  append(entry: NewAuditEntry, hash: (prevHash: string, row: NewAuditEntry & { seq: number }) => string): Promise<AuditEntry>;
  /** Oldest first. */
  list(query: AuditQuery): Promise<AuditEntry[]>;
}

// ---- Secrets at rest -----------------------------------------------------------------------------

/** A secret as stored: plain text, or sealed by src/secrets. */
export interface StoredSecret {
  kind: 'dkim' | 'webhook';
  /** The domain name, or the webhook id. */
  id: string;
  value: string;
}

export interface SecretStore {
  list(): Promise<StoredSecret[]>;
  /** Rewrites each secret whose stored value is still `from`, all in one transaction; returns how many were rewritten. */
  replace(changes: (StoredSecret & { from: string })[]): Promise<number>;
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

// ---- Outbound TLS policies and TLS-RPT counts ----------------------------------------------------

/** A recipient domain's MTA-STS policy (RFC 8461), as last fetched. */
export interface StsPolicyRecord {
  domain: string;
  /** The id of the `_mta-sts` TXT record the policy was fetched under. */
  id: string;
  mode: 'enforce' | 'testing' | 'none';
  mx: string[];
  /** Seconds. */
  maxAge: number;
  fetchedAt: number;
  expiresAt: number;
}

/** RFC 8460 policy types. */
export type TlsPolicyType = 'sts' | 'tlsa' | 'no-policy-found';

/** Sessions of one UTC day with one result, counted for a TLS report. */
export interface TlsResultCount {
  /** YYYY-MM-DD, UTC. */
  day: string;
  policyDomain: string;
  policyType: TlsPolicyType;
  /** The policy as the report quotes it (`policy-string`). */
  policyString: string[];
  mxHost: string;
  /** `success`, or an RFC 8460 result type (`certificate-host-mismatch`, ...). */
  resultType: string;
  count: number;
}

export interface TlsPolicyStore {
  stsPolicy(domain: string): Promise<StsPolicyRecord | undefined>;
  saveStsPolicy(policy: StsPolicyRecord): Promise<void>;
  /** Adds the counts to those already recorded under the same key. */
  countTlsResults(counts: TlsResultCount[]): Promise<void>;
  /** Removes and returns the counts of the days before `day`, so one node reports each day once. */
  takeTlsResults(beforeDay: string): Promise<TlsResultCount[]>;
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
  /** The domains' DKIM keys; `domains.add` stores the domain's first key as active. */
  readonly dkimKeys: DkimKeyStore;
  readonly credentials: CredentialStore;
  readonly credentialPolicies: CredentialPolicyStore;
  readonly limits: LimitStore;
  readonly idempotency: IdempotencyStore;
  readonly templates: TemplateStore;
  readonly webhooks: WebhookStore;
  readonly nodes: NodeRegistry;
  readonly operators: OperatorStore;
  readonly audit: AuditLog;
  /** Every DKIM private key and webhook secret as stored, for encrypting them at rest. */
  readonly secrets: SecretStore;
  readonly tlsPolicies: TlsPolicyStore;
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
