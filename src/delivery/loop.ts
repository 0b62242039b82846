/**
 * The delivery scheduler: claims due jobs from the Store, runs them within the pool's limits,
 * records each recipient's outcome, queues bounce notifications, and sleeps until the next due
 * time, the poll interval, or a wake() after an enqueue. It survives errors: they are logged,
 * and the recipients of an attempt that failed unexpectedly are deferred, never dropped.
 * Claimed work that was never finished (a crash) comes back when its Store lease runs out.
 */
import { buildDsn } from '../bounces/dsn.js';
import type { BounceRules } from '../bounces/classify.js';
import type { RelayConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { DeliveryJob, RecipientOutcome, Store } from '../queue/store.js';
import { newQueueId } from '../queue/ids.js';
import { attemptDelivery, outcomesForReply, type AttemptContext } from './attempt.js';
import { ConnectionPool, PoolClosedError } from './pool.js';
import { DestinationCache } from './destination-cache.js';
import { createResolver } from './resolver.js';

export interface DeliveryLoopOptions {
  store: Store;
  config: RelayConfig;
  logger: Logger;
  rules: BounceRules;
  /** Told each attempt's outcomes once they are recorded (metrics). */
  onOutcomes?: (job: DeliveryJob, outcomes: RecipientOutcome[]) => void;
}

const INTERNAL_ERROR = { code: 451, text: '451 4.3.0 internal error' };
/** After a stop, attempts that were interrupted or never started are due again at once. */
const STOPPED_RESPONSE = '4.3.2 delivery stopped before the attempt finished';
/** How long a stop waits for aborted attempts to record their outcomes. */
const ABORT_GRACE_MS = 1000;

export class DeliveryLoop {
  private readonly store: Store;
  private readonly onOutcomes: DeliveryLoopOptions['onOutcomes'];
  private readonly config: RelayConfig;
  private readonly logger: Logger;
  private readonly pool: ConnectionPool;
  private readonly context: AttemptContext;
  private readonly running = new Set<Promise<void>>();
  /** Recipients owned by a running attempt, so a re-claim after a lease ran out is not sent twice. */
  private readonly busyRecipients = new Set<number>();
  private timer: NodeJS.Timeout | undefined;
  private active = false;

  constructor(opts: DeliveryLoopOptions) {
    this.store = opts.store;
    this.onOutcomes = opts.onOutcomes;
    this.config = opts.config;
    this.logger = opts.logger;
    this.pool = new ConnectionPool(opts.config, opts.logger);
    this.context = {
      config: opts.config,
      destinations: new DestinationCache(createResolver(opts.config)),
      pool: this.pool,
      rules: opts.rules,
      logger: opts.logger,
    };
  }

  start(): void {
    if (this.config.delivery.paused) {
      this.logger.warn('delivery is paused (delivery.paused): mail is accepted and queued but not sent');
      return;
    }
    this.active = true;
    this.schedule(0);
  }

  /** New mail was queued: look for due work now rather than at the next poll. */
  wake(): void {
    if (this.active) this.schedule(0);
  }

  /** Stops claiming work, waits for running attempts up to timeoutMs, then closes every session. */
  async stop(timeoutMs = 30_000): Promise<void> {
    this.active = false;
    clearTimeout(this.timer);
    const finished = await settledWithin([...this.running], timeoutMs);
    this.pool.close(!finished);
    if (!finished) {
      this.logger.warn({ attempts: this.running.size }, 'delivery stop timed out; interrupting running attempts');
      await settledWithin([...this.running], ABORT_GRACE_MS);
    }
  }

  private schedule(delayMs: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.tick(), delayMs);
  }

  private tick(): void {
    if (!this.active) return;
    const { concurrency, lease, poll_interval: poll } = this.config.delivery;
    try {
      const capacity = concurrency - this.running.size;
      let claimed = 0;
      if (capacity > 0) {
        const jobs = this.store.claimDue(Date.now(), capacity, lease);
        claimed = jobs.length;
        for (const job of jobs) this.run(job);
      }
      // A full claim may have left more due work behind; otherwise sleep until the next due time.
      const more = capacity > 0 && claimed === capacity && this.running.size < concurrency;
      const next = this.store.nextDueAt();
      const untilNext = next === null ? poll : Math.min(poll, next - Date.now());
      this.schedule(more ? 0 : untilNext > 0 ? untilNext : poll);
    } catch (err) {
      this.logger.error({ err }, 'delivery scheduler error');
      this.schedule(poll);
    }
  }

  private run(claimed: DeliveryJob): void {
    const recipients = claimed.recipients.filter((r) => !this.busyRecipients.has(r.id));
    if (recipients.length === 0) return;
    const job = { ...claimed, recipients };
    for (const r of recipients) this.busyRecipients.add(r.id);
    const attempt = this.deliver(job)
      .catch((err) => this.logger.error({ err, queueId: job.queueId, recipientDomain: job.domain }, 'delivery attempt failed unexpectedly'))
      .finally(() => {
        for (const r of recipients) this.busyRecipients.delete(r.id);
        this.running.delete(attempt);
        this.wake();
      });
    this.running.add(attempt);
  }

  private async deliver(job: DeliveryJob): Promise<void> {
    const body = this.store.body(job.queueId);
    if (!body) {
      this.logger.info({ queueId: job.queueId, recipientDomain: job.domain }, 'message deleted before delivery');
      return;
    }
    let outcomes: RecipientOutcome[];
    let release: (() => void) | undefined;
    try {
      release = await this.pool.slot(job.domain);
      outcomes = await attemptDelivery(job, body, this.context);
    } catch (err) {
      if (err instanceof PoolClosedError) {
        outcomes = job.recipients.map((r) => ({ recipientId: r.id, status: 'deferred', nextAttemptAt: Date.now(), response: STOPPED_RESPONSE }));
      } else {
        this.logger.error({ err, queueId: job.queueId, recipientDomain: job.domain }, 'delivery attempt failed unexpectedly');
        outcomes = outcomesForReply(job, INTERNAL_ERROR, this.context);
      }
    } finally {
      release?.();
    }
    if (await this.record(job, outcomes)) await this.notifySender(job, outcomes, body);
  }

  private async record(job: DeliveryJob, outcomes: RecipientOutcome[]): Promise<boolean> {
    try {
      await this.store.queueOutcomes(job, outcomes);
    } catch (err) {
      this.logger.error({ err, queueId: job.queueId, recipientDomain: job.domain }, 'could not record outcomes; retried when the lease runs out');
      return false;
    }
    this.onOutcomes?.(job, outcomes);
    for (const o of outcomes) {
      this.logger.info(
        { queueId: job.queueId, recipientDomain: job.domain, status: o.status, code: o.smtpCode, response: o.response, category: o.category },
        `recipient ${o.status}`,
      );
    }
    return true;
  }

  /** Queues one DSN for the recipients that failed for good in this attempt (bounces.notify_sender). */
  private async notifySender(job: DeliveryJob, outcomes: RecipientOutcome[], message: Buffer): Promise<void> {
    if (!this.config.bounces.notify_sender || job.mailFrom === '') return;
    const addressOf = new Map(job.recipients.map((r) => [r.id, r.address]));
    const failed = outcomes.flatMap((o) =>
      o.status === 'bounced' || o.status === 'expired'
        ? [{ address: addressOf.get(o.recipientId)!, status: o.status, smtpCode: o.smtpCode, response: o.response }]
        : [],
    );
    if (failed.length === 0) return;
    try {
      if (this.store.isSuppressed(job.mailFrom)) {
        this.logger.info({ queueId: job.queueId }, 'no bounce notification: the sender is on the suppression list');
        return;
      }
      const now = Date.now();
      const dsn = buildDsn({ hostname: this.config.hostname, queueId: job.queueId, mailFrom: job.mailFrom, receivedAt: job.receivedAt, message, recipients: failed });
      const queueId = newQueueId();
      await this.store.enqueue({
        queueId,
        messageId: dsn.messageId,
        credential: 'MAILER-DAEMON',
        mailFrom: '',
        recipients: [job.mailFrom],
        body: dsn.body,
        receivedAt: now,
        expiresAt: now + this.config.delivery.max_queue_age,
      });
      this.logger.info({ queueId, originalQueueId: job.queueId, recipients: failed.length }, 'bounce notification queued');
      this.wake();
    } catch (err) {
      this.logger.error({ err, queueId: job.queueId }, 'could not queue bounce notification');
    }
  }
}

/** True when every promise settled within the time. */
async function settledWithin(promises: Promise<unknown>[], ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  const settled = Promise.allSettled(promises).then(() => true as const);
  try {
    return await Promise.race([settled, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
