/**
 * The acceptance pipeline every door into Relay goes through (the SMTP listeners and the HTTP API):
 * sender policy, recipient checks, then cleanup, header policy, DKIM signing and the durable
 * enqueue. Refusals are SmtpReply errors with exact codes; anything unexpected becomes a
 * temporary 451 4.3.0 (452 4.3.1 for a full storage), never a 5xx.
 */
import type { RelayConfig } from '../config/schema.js';
import { domainOf } from '../envelope/address.js';
import type { Clock } from '../envelope/time.js';
import type { Logger } from '../log.js';
import type { CredentialRecord, Storage } from '../queue/storage.js';
import type { DkimSigner } from '../signing/dkim.js';
import { ActiveCredentials } from './active-credentials.js';
import { CredentialQuota, overQuota } from './quota.js';
import { SigningKeyCache, VerifiedDomainCache } from './domain-cache.js';
import { IdempotentSubmissions, idempotencyKeys, takeIdempotencyKey, type Accepted } from './idempotency.js';
import { LoginGuard } from './login-guard.js';
import { partsSize, readHeader, splitHead, type MessageParts } from '../envelope/header.js';
import { normaliseChunks, prepareMessage, type TraceInfo } from './message.js';
import { checkRecipientAddress } from './recipient-address.js';
import { checkSender } from './policy.js';
import { ActivePolicies, checkReplyTo, checkSandboxRecipient, checkSenderIdentity } from './credential-policy.js';
import { takeTags } from './tags.js';
import { internalFailureReply } from './faults.js';
import { reply, SmtpReply } from './replies.js';

/** Told what the pipeline decides, for metrics; never changes a decision. */
export interface PipelineObserver {
  refused(refusal: SmtpReply): void;
  /** A message was committed to the queue (not a repeat of one already queued). */
  queued(): void;
  loginFailed(): void;
}

export interface PipelineDeps {
  config: RelayConfig;
  storage: Pick<
    Storage,
    'queue' | 'events' | 'suppressions' | 'domains' | 'dkimKeys' | 'credentials' | 'credentialPolicies' | 'limits' | 'idempotency'
  >;
  signer: DkimSigner;
  logger: Logger;
  /** Called after each commit so delivery starts without waiting for its next poll. */
  onQueued: () => void;
  observer?: PipelineObserver;
  /** Rates, quotas and lockouts read it; Date.now unless a test sets the time. */
  clock?: Clock;
}

export interface Submission {
  queueId: string;
  credential: CredentialRecord;
  mailFrom: string;
  recipients: string[];
  /** The message as it arrived, in chunks: they are joined once, when the message is signed. */
  chunks: Buffer[];
  trace: Omit<TraceInfo, 'queueId' | 'hostname'>;
}

export class SubmissionPipeline {
  private readonly logins: LoginGuard;
  private readonly quota: CredentialQuota;
  private readonly idempotent: IdempotentSubmissions;
  private readonly domains: VerifiedDomainCache;
  private readonly signingKeys: SigningKeyCache;
  private readonly active: ActiveCredentials;
  private readonly now: Clock;
  private readonly policies: ActivePolicies;

  constructor(private readonly deps: PipelineDeps) {
    const { storage, config, logger } = deps;
    this.now = deps.clock ?? Date.now;
    this.logins = new LoginGuard(storage.credentials, storage.limits, config, logger, this.now);
    this.quota = new CredentialQuota(storage.limits, this.now);
    this.idempotent = new IdempotentSubmissions(storage.idempotency, config);
    this.domains = new VerifiedDomainCache(storage.domains);
    this.signingKeys = new SigningKeyCache(storage.dkimKeys);
    this.active = new ActiveCredentials(storage.credentials);
    this.policies = new ActivePolicies(storage.credentialPolicies);
  }

  /** The credential for a login, or throws 535 5.7.8 (wrong) or 454 4.7.0 (brute-force cooling off; login-guard.ts). */
  async authenticate(username: string, password: string, remoteAddress: string): Promise<CredentialRecord> {
    try {
      return await this.logins.authenticate(username, password, remoteAddress);
    } catch (err) {
      if (err instanceof SmtpReply) this.deps.observer?.loginFailed();
      throw err;
    }
  }

  /**
   * The envelope sender check (MAIL FROM). The credential is read again (within 2 s), so a
   * revoke stops sessions that logged in before it.
   */
  async checkEnvelopeSender(credential: CredentialRecord, address: string): Promise<SmtpReply | undefined> {
    return this.observed(async () => {
      const current = await this.active.get(credential.name);
      if (!current) return reply(550, '5.7.8', `credential ${credential.name} has been revoked`);
      if (address === '') return reply(550, '5.7.1', 'null reverse-path is not accepted for submission');
      return this.checkSenderAddress(current, address, 'envelope sender');
    });
  }

  /**
   * One recipient (RCPT TO); `accepted` is how many the transaction already has. An accepted
   * recipient is reserved against the credential's rate and quotas until the transaction is
   * accepted or abandoned.
   */
  async checkRecipient(credential: CredentialRecord, queueId: string, address: string, accepted: number): Promise<SmtpReply | undefined> {
    return this.observed(async () => {
      const { storage, config, logger } = this.deps;
      const max = config.limits.max_recipients;
      if (accepted >= max) return reply(452, '4.5.3', `too many recipients (at most ${max} per message)`, 'recipients');
      const badAddress = checkRecipientAddress(address);
      if (badAddress) return badAddress;
      const outsideSandbox = checkSandboxRecipient(await this.policies.get(credential.name), credential, address);
      if (outsideSandbox) return outsideSandbox;
      if (!(await storage.suppressions.isSuppressed(address, credential.name))) return this.reserve(credential, queueId, [address]);
      const refusal = reply(550, '5.1.1', `recipient <${address}> is on the suppression list`);
      storage.events
        .record({
          queueId,
          messageId: '',
          credential: credential.name,
          recipient: address,
          status: 'suppressed',
          smtpCode: 550,
          response: `550 ${refusal.message}`,
          category: 'suppressed',
        })
        .catch((err: unknown) => logger.error({ err }, 'could not record suppressed event'));
      logger.info({ queueId, recipientDomain: domainOf(address), status: 'suppressed' }, 'recipient suppressed');
      return refusal;
    });
  }

  /** A transaction that ends without accept() (RSET, a new MAIL, disconnect) gives back its reservation. */
  abandon(queueId: string): void {
    this.quota.release(queueId);
  }

  /**
   * Cleanup, policy on the header, signing and the durable enqueue; resolves once committed, to
   * the queue id used: the submission's own, or the original's when it repeats one accepted
   * within limits.idempotency_window (idempotency.ts), which is not queued again.
   */
  async accept(submission: Submission): Promise<string> {
    const { logger } = this.deps;
    const { queueId, credential } = submission;
    try {
      const { head: rawHead, rest } = splitHead(normaliseChunks(submission.chunks));
      const keyed = takeIdempotencyKey(rawHead);
      const { key } = keyed;
      const { message: head, tags } = takeTags(keyed.message);
      const message = { head, rest };
      // The same limit for every door, on the message as it will be queued (SMTP's DATA is also cut at it as it arrives).
      const max = this.deps.config.limits.max_message_bytes;
      if (partsSize(message) > max) {
        throw reply(552, '5.3.4', `message exceeds the maximum size of ${max} bytes`);
      }
      const clientMessageId = readHeader(head).fields.find((f) => f.name === 'message-id')?.value;
      const keys = idempotencyKeys({ key, clientMessageId, mailFrom: submission.mailFrom, recipients: submission.recipients });
      const result = await this.idempotent.once(credential.name, keys, () => this.enqueue(submission, message, keys, tags));
      if (result.duplicate) {
        logger.info({ queueId: result.queueId, credential: credential.name, duplicate: queueId }, 'repeated submission: not queued again');
      } else {
        this.deps.observer?.queued();
      }
      return result.queueId;
    } catch (err) {
      if (err instanceof SmtpReply) {
        logger.info({ queueId, credential: credential.name, refused: err.message }, 'message refused');
        this.deps.observer?.refused(err);
        throw err;
      }
      logger.error({ queueId, err }, 'could not queue message');
      throw internalFailureReply(err);
    } finally {
      this.quota.release(queueId);
    }
  }

  private async observed(check: () => Promise<SmtpReply | undefined>): Promise<SmtpReply | undefined> {
    const refusal = await check();
    if (refusal) this.deps.observer?.refused(refusal);
    return refusal;
  }

  /** Reserves recipients against the credential's limits; the refusal is logged for the operator. */
  private async reserve(credential: CredentialRecord, queueId: string, recipients: string[]): Promise<SmtpReply | undefined> {
    const refusal = await this.quota.reserve(credential.name, queueId, recipients);
    if (refusal) this.deps.logger.warn({ queueId, credential: credential.name, refused: refusal.message }, 'over credential limit');
    return refusal;
  }

  /** The domain rule (policy.ts), then the credential's sender identities. */
  private async checkSenderAddress(
    credential: CredentialRecord,
    address: string,
    field: 'envelope sender' | 'header From' | 'header Sender',
  ): Promise<SmtpReply | undefined> {
    return (
      (await checkSender(this.domains, credential, address, field)) ??
      checkSenderIdentity(await this.policies.get(credential.name), credential, address, field)
    );
  }

  private async enqueue(submission: Submission, message: MessageParts, idempotencyKeys: string[], tags: string[]): Promise<Accepted> {
    const { storage, config, signer, logger } = this.deps;
    const { queueId, recipients } = submission;
    const credential = await this.active.get(submission.credential.name);
    if (!credential) throw reply(550, '5.7.8', `credential ${submission.credential.name} has been revoked`);
    // Doors that do not check recipients one by one (the HTTP API) are held to the limits here.
    const overLimit = await this.reserve(credential, queueId, recipients);
    if (overLimit) throw overLimit;
    const prepared = prepareMessage(message.head, { ...submission.trace, queueId, hostname: config.hostname });
    for (const address of prepared.from) {
      const refusal = await this.checkSenderAddress(credential, address, 'header From');
      if (refusal) throw refusal;
    }
    if (prepared.sender) {
      const refusal = await this.checkSenderAddress(credential, prepared.sender, 'header Sender');
      if (refusal) throw refusal;
    }
    const replyToRefusal = checkReplyTo(await this.policies.get(credential.name), credential, prepared.replyTo);
    if (replyToRefusal) throw replyToRefusal;
    const signingDomain = (await this.domains.get(domainOf(prepared.from[0]!)))!;
    const signed = await signer.signAllAsync({ head: prepared.head, rest: message.rest }, await this.signingKeys.get(signingDomain));
    const now = this.now();
    const result = await storage.queue.enqueue({
      queueId,
      messageId: prepared.messageId,
      credential: credential.name,
      mailFrom: submission.mailFrom,
      recipients,
      body: signed,
      receivedAt: now,
      expiresAt: now + config.delivery.max_queue_age,
      idempotencyKeys,
      idempotencySince: this.idempotent.since(now),
      quota: await this.quota.caps(credential.name),
      tags,
    });
    if (result.status === 'duplicate') {
      await this.idempotent.checkSameEnvelope(credential.name, idempotencyKeys, result.queueId, this.idempotent.since(now));
      return { queueId: result.queueId, duplicate: true };
    }
    if (result.status === 'over-quota') {
      const caps = await this.quota.caps(credential.name);
      throw overQuota(credential.name, result.period, caps[result.period], now);
    }
    for (const domain of new Set(recipients.map(domainOf))) {
      logger.info(
        { queueId, credential: credential.name, recipientDomain: domain, status: 'queued', size: partsSize(signed) },
        'message queued',
      );
    }
    this.deps.onQueued();
    return { queueId, duplicate: false };
  }
}
