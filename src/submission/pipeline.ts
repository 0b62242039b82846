/**
 * The acceptance pipeline every door into Relay goes through (SMTP today, the HTTP API later):
 * sender policy, recipient checks, then cleanup, header policy, DKIM signing and the durable
 * enqueue. Refusals are SmtpReply errors with exact codes; anything unexpected becomes a
 * temporary 451 4.3.0, never a 5xx.
 */
import type { RelayConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { CredentialRecord, Store } from '../queue/store.js';
import type { DkimSigner } from '../signing/dkim.js';
import { prepareMessage, type TraceInfo } from './message.js';
import { checkSender, domainOfAddress } from './policy.js';
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
  constructor(private readonly deps: PipelineDeps) {}

  /** The envelope sender check (MAIL FROM). */
  checkEnvelopeSender(credential: CredentialRecord, address: string): SmtpReply | undefined {
    if (address === '') return reply(550, '5.7.1', 'null reverse-path is not accepted for submission');
    return checkSender(this.deps.store, credential, address, 'envelope sender');
  }

  /** One recipient (RCPT TO); `accepted` is how many the transaction already has. */
  checkRecipient(queueId: string, address: string, accepted: number): SmtpReply | undefined {
    const { store, config, logger } = this.deps;
    const max = config.limits.max_recipients;
    if (accepted >= max) return reply(452, '4.5.3', `too many recipients (at most ${max} per message)`);
    if (!/^[^@\s]+@[^@\s]+$/.test(address)) return reply(501, '5.1.3', `bad recipient address syntax: <${address}>`);
    if (!store.isSuppressed(address)) return undefined;
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

  /** Cleanup, policy on the header, signing and the durable enqueue; resolves once committed. */
  async accept(submission: Submission): Promise<void> {
    const { store, config, signer, logger } = this.deps;
    const { queueId, credential, recipients } = submission;
    try {
      const prepared = prepareMessage(submission.raw, { ...submission.trace, queueId, hostname: config.hostname });
      for (const address of prepared.from) {
        const refusal = checkSender(store, credential, address, 'header From');
        if (refusal) throw refusal;
      }
      if (prepared.sender) {
        const refusal = checkSender(store, credential, prepared.sender, 'header Sender');
        if (refusal) throw refusal;
      }
      const signingDomain = store.getDomain(domainOfAddress(prepared.from[0]!))!;
      const signed = signer.sign(prepared.bytes, {
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
      });
      for (const domain of new Set(recipients.map(domainOfAddress))) {
        logger.info({ queueId, credential: credential.name, recipientDomain: domain, status: 'queued', size: signed.length }, 'message queued');
      }
      this.deps.onQueued();
    } catch (err) {
      if (err instanceof SmtpReply) {
        logger.info({ queueId, credential: credential.name, refused: err.message }, 'message refused');
        throw err;
      }
      logger.error({ queueId, err }, 'could not queue message');
      throw reply(451, '4.3.0', 'temporary local problem, message not queued: try again later');
    }
  }
}
