/**
 * The acceptance pipeline every door into Relay goes through (the SMTP listeners and the HTTP API):
 * sender policy, recipient checks, then cleanup, header policy, DKIM signing and the durable
 * enqueue. Refusals are SmtpReply errors with exact codes; anything unexpected becomes a
 * temporary 451 4.3.0 (452 4.3.1 for a full disk), never a 5xx.
 */
import type { RelayConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { CredentialRecord, Store } from '../queue/store.js';
import type { DkimSigner } from '../signing/dkim.js';
import { CredentialQuota } from './quota.js';
import { VerifiedDomainCache } from './domain-cache.js';
import { IdempotentSubmissions, idempotencyKeys, takeIdempotencyKey } from './idempotency.js';
import { LoginGuard } from './login-guard.js';
import { normaliseLineEndings, prepareMessage, readHeader, type TraceInfo } from './message.js';
import { checkRecipientAddress } from './recipient-address.js';
import { checkSender, domainOfAddress } from './policy.js';
import { internalFailureReply } from './faults.js';
import { reply, SmtpReply } from './replies.js';

export interface PipelineDeps {
  config: RelayConfig;
  store: Store;
  signer: DkimSigner;
  logger: Logger;
  /** Called after each commit so delivery starts without waiting for its next poll. */
  onQueued: () => void;
}

export interface Submission {
  queueId: string;
  credential: CredentialRecord;
  mailFrom: string;
  recipients: string[];
  raw: Buffer;
  trace: Omit<TraceInfo, 'queueId' | 'hostname'>;
}

export class SubmissionPipeline {
  private readonly logins: LoginGuard;
  private readonly quota: CredentialQuota;
  private readonly idempotent: IdempotentSubmissions;
  private readonly domains: VerifiedDomainCache;

  constructor(private readonly deps: PipelineDeps) {
    this.logins = new LoginGuard(deps.store, deps.config, deps.logger);
    this.quota = new CredentialQuota(deps.store);
    this.idempotent = new IdempotentSubmissions(deps.store, deps.config);
    this.domains = new VerifiedDomainCache(deps.store);
  }

  /** The credential for a login, or throws 535 5.7.8 (wrong) or 454 4.7.0 (brute-force cooling off; login-guard.ts). */
  authenticate(username: string, password: string, remoteAddress: string): Promise<CredentialRecord> {
    return this.logins.authenticate(username, password, remoteAddress);
  }

  /** The envelope sender check (MAIL FROM). */
  checkEnvelopeSender(credential: CredentialRecord, address: string): SmtpReply | undefined {
    if (address === '') return reply(550, '5.7.1', 'null reverse-path is not accepted for submission');
    return checkSender(this.domains, credential, address, 'envelope sender');
  }

  /**
   * One recipient (RCPT TO); `accepted` is how many the transaction already has. An accepted
   * recipient is reserved against the credential's rate and quotas until the transaction is
   * accepted or abandoned.
   */
  checkRecipient(credential: CredentialRecord, queueId: string, address: string, accepted: number): SmtpReply | undefined {
    const { store, config, logger } = this.deps;
    const max = config.limits.max_recipients;
    if (accepted >= max) return reply(452, '4.5.3', `too many recipients (at most ${max} per message)`, 'recipients');
    const badAddress = checkRecipientAddress(address);
    if (badAddress) return badAddress;
    if (!store.isSuppressed(address)) return this.reserve(credential, queueId, [address]);
    const refusal = reply(550, '5.1.1', `recipient <${address}> is on the suppression list`);
    store
      .recordEvent({
        queue_id: queueId,
        message_id: '',
        recipient: address,
        status: 'suppressed',
        smtp_code: 550,
        response: `550 ${refusal.message}`,
        category: 'suppressed',
      })
      .catch((err) => logger.error({ err }, 'could not record suppressed event'));
    logger.info({ queueId, recipientDomain: domainOfAddress(address), status: 'suppressed' }, 'recipient suppressed');
    return refusal;
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
      const { message, key } = takeIdempotencyKey(normaliseLineEndings(submission.raw));
      // The same limit for every door, on the message as it will be queued (SMTP's DATA is also cut at it as it arrives).
      const max = this.deps.config.limits.max_message_bytes;
      if (message.length > max) throw reply(552, '5.3.4', `message exceeds the maximum size of ${max} bytes`);
      const clientMessageId = readHeader(message).fields.find((f) => f.name === 'message-id')?.value;
      const keys = idempotencyKeys({ key, clientMessageId, mailFrom: submission.mailFrom, recipients: submission.recipients });
      const result = await this.idempotent.once(credential.name, keys, () => this.enqueue(submission, message, keys));
      if (result.duplicate) {
        logger.info({ queueId: result.queueId, credential: credential.name, duplicate: queueId }, 'repeated submission: not queued again');
      }
      return result.queueId;
    } catch (err) {
      if (err instanceof SmtpReply) {
        logger.info({ queueId, credential: credential.name, refused: err.message }, 'message refused');
        throw err;
      }
      logger.error({ queueId, err }, 'could not queue message');
      throw internalFailureReply(err);
    } finally {
      this.quota.release(queueId);
    }
  }

  /** Reserves recipients against the credential's limits; the refusal is logged for the operator. */
  private reserve(credential: CredentialRecord, queueId: string, recipients: string[]): SmtpReply | undefined {
    const refusal = this.quota.reserve(credential.name, queueId, recipients);
    if (refusal) this.deps.logger.warn({ queueId, credential: credential.name, refused: refusal.message }, 'over credential limit');
    return refusal;
  }

  private async enqueue(submission: Submission, message: Buffer, idempotencyKeys: string[]): Promise<string> {
    const { store, config, signer, logger } = this.deps;
    const { queueId, credential, recipients } = submission;
    // Doors that do not check recipients one by one (the HTTP API) are held to the limits here.
    const overLimit = this.reserve(credential, queueId, recipients);
    if (overLimit) throw overLimit;
    const prepared = prepareMessage(message, { ...submission.trace, queueId, hostname: config.hostname });
    for (const address of prepared.from) {
      const refusal = checkSender(this.domains, credential, address, 'header From');
      if (refusal) throw refusal;
    }
    if (prepared.sender) {
      const refusal = checkSender(this.domains, credential, prepared.sender, 'header Sender');
      if (refusal) throw refusal;
    }
    const signingDomain = this.domains.getDomain(domainOfAddress(prepared.from[0]!))!;
    const signed = await signer.signAsync(prepared.bytes, {
      domain: signingDomain.name,
      selector: signingDomain.selector,
      algorithm: signingDomain.algorithm,
      privateKeyPem: signingDomain.privateKeyPem,
    });
    const now = Date.now();
    await store.enqueue({
      queueId,
      messageId: prepared.messageId,
      credential: credential.name,
      mailFrom: submission.mailFrom,
      recipients,
      body: signed,
      receivedAt: now,
      expiresAt: now + config.delivery.max_queue_age,
      idempotencyKeys,
    });
    for (const domain of new Set(recipients.map(domainOfAddress))) {
      logger.info({ queueId, credential: credential.name, recipientDomain: domain, status: 'queued', size: signed.length }, 'message queued');
    }
    this.deps.onQueued();
    return queueId;
  }
}
