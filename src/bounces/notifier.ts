/**
 * Bounce notifications (bounces.notify_sender): one RFC 3464 DSN per attempt for the recipients
 * that failed for good, queued like any message from the null sender, unless the envelope sender
 * is itself suppressed or was the null sender (a bounce never bounces).
 */
import type { RelayConfig } from '../config/schema.js';
import { partsOf } from '../envelope/header.js';
import type { Logger } from '../log.js';
import { newQueueId } from '../queue/ids.js';
import type { DeliveryJob, MessageQueue, RecipientOutcome, SuppressionList } from '../queue/storage.js';
import { buildDsn, type FailedRecipient } from './dsn.js';

/** The credential name DSNs are queued under. */
export const MAILER_DAEMON = 'MAILER-DAEMON';

export class BounceNotifier {
  constructor(
    private readonly deps: {
      config: RelayConfig;
      queue: Pick<MessageQueue, 'enqueue'>;
      suppressions: Pick<SuppressionList, 'isSuppressed'>;
      logger: Logger;
      /** Called once a DSN is queued, so delivery picks it up at once. */
      onQueued: () => void;
    },
  ) {}

  /** `head`: the failed message's header block, which the DSN returns. */
  async notify(job: DeliveryJob, outcomes: RecipientOutcome[], head: Buffer): Promise<void> {
    const { config, queue, suppressions, logger } = this.deps;
    if (!config.bounces.notify_sender || job.mailFrom === '') return;
    const addressOf = new Map(job.recipients.map((r) => [r.id, r.address]));
    const failed = outcomes.flatMap((o): FailedRecipient[] => {
      const address = addressOf.get(o.recipientId);
      if (address === undefined || (o.status !== 'bounced' && o.status !== 'expired')) return [];
      return [{ address, status: o.status, smtpCode: o.smtpCode, response: o.response }];
    });
    if (failed.length === 0) return;
    try {
      if (await suppressions.isSuppressed(job.mailFrom, MAILER_DAEMON)) {
        logger.info({ queueId: job.queueId }, 'no bounce notification: the sender is on the suppression list');
        return;
      }
      const now = Date.now();
      const dsn = buildDsn({
        hostname: config.hostname,
        queueId: job.queueId,
        mailFrom: job.mailFrom,
        receivedAt: job.receivedAt,
        message: head,
        recipients: failed,
      });
      const queueId = newQueueId();
      await queue.enqueue({
        queueId,
        messageId: dsn.messageId,
        credential: MAILER_DAEMON,
        mailFrom: '',
        recipients: [job.mailFrom],
        body: partsOf(dsn.body),
        receivedAt: now,
        expiresAt: now + config.delivery.max_queue_age,
      });
      logger.info({ queueId, originalQueueId: job.queueId, recipients: failed.length }, 'bounce notification queued');
      this.deps.onQueued();
    } catch (err) {
      logger.error({ err, queueId: job.queueId }, 'could not queue bounce notification');
    }
  }
}
