/**
 * The delivery scheduler (Postfix's qmgr): claims due jobs from the queue under this node's
 * lease, runs them within the pool's limits, records each recipient's outcome with the
 * suppressions the bounces stage decides on, hands failures to the bounce notifier, and sleeps
 * until the next due time, the poll interval, or a wake() after an enqueue. It survives errors:
 * they are logged, and the recipients of an attempt that failed unexpectedly are deferred, never
 * dropped. Claimed work that was never finished (a crash) comes back when its lease runs out, or
 * at once when the node starts again under its name (cluster/node.ts).
 */
import type { BounceNotifier } from '../bounces/notifier.js';
import { suppressionsFor } from '../bounces/suppress.js';
import type { BounceRules } from '../bounces/classify.js';
import type { RelayConfig } from '../config/schema.js';
import type { MessageParts } from '../envelope/header.js';
import type { Clock } from '../envelope/time.js';
import type { Logger } from '../log.js';
import { OutboundTls } from '../outbound-tls/policy.js';
import type { DeliveryJob, MessageQueue, RecipientOutcome, TlsPolicyStore } from '../queue/storage.js';
import type { Shaper, ShapingRoute } from '../shaping/shaper.js';
import { attemptDelivery, outcomesForReply, type AttemptContext } from './attempt.js';
import { ConnectionPool, PoolClosedError } from './pool.js';
import { DestinationCache } from './destination-cache.js';
import type { DnsFailure } from './mx.js';
import { createResolver } from './resolver.js';

export interface DeliveryLoopOptions {
  queue: Pick<MessageQueue, 'claimDue' | 'body' | 'recordAttempt' | 'nextDueAt'>;
  /** The node name claims are leased to. */
  node: string;
  bounces: Pick<BounceNotifier, 'notify'>;
  config: RelayConfig;
  logger: Logger;
  rules: BounceRules;
  /** Recipient domains' MTA-STS policies and the TLS report counts. */
  tlsPolicies: TlsPolicyStore;
  /** Told each attempt's outcomes once they are recorded (metrics). */
  onOutcomes?: (job: DeliveryJob, outcomes: RecipientOutcome[]) => void;
  /** What is due, when a retry falls due, when TLS policies expire and TLS reports are counted; Date.now unless a test sets the time. */
  clock?: Clock;
  /** Traffic shaping: when an attempt to a shaped destination may start. */
  shaper?: Shaper;
  /** Per-recipient envelope senders and headers (the feedback stage's return path and unsubscribe links). */
  perRecipient?: PerRecipientEnvelope;
}

export interface PerRecipientEnvelope {
  /** True when each recipient of the job must go in its own transaction. */
  perRecipient(job: DeliveryJob, body: MessageParts): Promise<boolean>;
  prepare(
    job: DeliveryJob,
    recipient: DeliveryJob['recipients'][number],
    body: MessageParts,
  ): Promise<{ mailFrom: string; body: MessageParts }>;
}

const INTERNAL_ERROR = { code: 451, text: '451 4.3.0 internal error' };
/** After a stop, attempts that were interrupted or never started are due again at once. */
const STOPPED_RESPONSE = '4.3.2 delivery stopped before the attempt finished';
/** How long a stop waits for aborted attempts to record their outcomes. */
const ABORT_GRACE_MS = 1000;

export class DeliveryLoop {
  private readonly queue: DeliveryLoopOptions['queue'];
  private readonly bounces: DeliveryLoopOptions['bounces'];
  private readonly node: string;
  private readonly onOutcomes: DeliveryLoopOptions['onOutcomes'];
  private readonly envelopes: PerRecipientEnvelope | undefined;
  private readonly config: RelayConfig;
  private readonly logger: Logger;
  private readonly now: Clock;
  private readonly pool: ConnectionPool;
  private readonly context: AttemptContext;
  private readonly shaper: Shaper | undefined;
  private readonly running = new Set<Promise<void>>();
  /** Recipients owned by a running attempt, so a re-claim after a lease ran out is not sent twice. */
  private readonly busyRecipients = new Set<number>();
  private timer: NodeJS.Timeout | undefined;
  private active = false;
  private ticking = false;
  private tickAgain = false;

  constructor(opts: DeliveryLoopOptions) {
    this.queue = opts.queue;
    this.bounces = opts.bounces;
    this.node = opts.node;
    this.onOutcomes = opts.onOutcomes;
    this.envelopes = opts.perRecipient;
    this.config = opts.config;
    this.logger = opts.logger;
    this.now = opts.clock ?? Date.now;
    this.pool = new ConnectionPool(opts.config, opts.logger);
    this.shaper = opts.shaper;
    const resolver = createResolver(opts.config);
    this.context = {
      config: opts.config,
      destinations: new DestinationCache(resolver),
      pool: this.pool,
      tls: new OutboundTls({ config: opts.config, store: opts.tlsPolicies, resolver, logger: opts.logger, clock: this.now }),
      rules: opts.rules,
      logger: opts.logger,
      now: this.now,
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
    this.timer = setTimeout(() => void this.tick(), delayMs);
  }

  /** One claim at a time: a wake() during a tick runs another tick right after it. */
  private async tick(): Promise<void> {
    if (!this.active) return;
    if (this.ticking) {
      this.tickAgain = true;
      return;
    }
    this.ticking = true;
    this.tickAgain = false;
    const { concurrency, lease, poll_interval: poll } = this.config.delivery;
    let delay = poll;
    try {
      const capacity = concurrency - this.running.size;
      let claimed = 0;
      if (capacity > 0) {
        const jobs = await this.queue.claimDue(this.now(), capacity, { owner: this.node, ms: lease });
        claimed = jobs.length;
        for (const job of jobs) this.run(job);
      }
      // A full claim may have left more due work behind; otherwise sleep until the next due time.
      const more = capacity > 0 && claimed === capacity && this.running.size < concurrency;
      const next = await this.queue.nextDueAt();
      const untilNext = next === null ? poll : Math.min(poll, next - this.now());
      delay = more || this.tickAgain ? 0 : untilNext > 0 ? untilNext : poll;
    } catch (err) {
      this.logger.error({ err }, 'delivery scheduler error');
    } finally {
      this.ticking = false;
    }
    if (this.active) this.schedule(delay);
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
    const body = await this.queue.body(job.queueId);
    if (!body) {
      this.logger.info({ queueId: job.queueId, recipientDomain: job.domain }, 'message deleted before delivery');
      return;
    }
    const outcomes = await this.shaped(job, (route) => this.attempt(job, body, route));
    if (await this.record(job, outcomes)) await this.bounces.notify(job, outcomes, body.head);
  }

  /** The attempt, when shaping lets it start; recipients it holds back are deferred to when it will. */
  private async shaped(job: DeliveryJob, attempt: (route?: ShapingRoute) => Promise<RecipientOutcome[]>): Promise<RecipientOutcome[]> {
    if (!this.shaper) return attempt();
    let unresolved: DnsFailure | undefined;
    const admission = await this.shaper.admit(job.domain, async () => {
      const mx = await this.context.destinations.lookup(job.domain);
      if (!mx.ok) unresolved = mx.failure;
      return mx.ok ? mx.destinations.map((d) => d.host) : [];
    });
    // Failed lookups are not cached: the attempt would only ask DNS (and wait for its timeout) again.
    if (unresolved) return outcomesForReply(job, { code: unresolved.code, text: unresolved.response }, this.context);
    if (!admission.go) {
      return job.recipients.map((r) =>
        admission.until > job.expiresAt
          ? { recipientId: r.id, status: 'expired', response: admission.reason, category: 'rate_limited' }
          : { recipientId: r.id, status: 'deferred', nextAttemptAt: admission.until, response: admission.reason, category: 'rate_limited' },
      );
    }
    let outcomes: RecipientOutcome[] = [];
    try {
      outcomes = await attempt(admission.permit?.route);
      return outcomes;
    } finally {
      admission.permit?.finish(outcomes);
    }
  }

  private async attempt(job: DeliveryJob, body: MessageParts, route?: ShapingRoute): Promise<RecipientOutcome[]> {
    let outcomes: RecipientOutcome[];
    let release: (() => void) | undefined;
    try {
      release = await this.pool.slot(job.domain);
      outcomes = await this.transactions(job, body, route);
    } catch (err) {
      if (err instanceof PoolClosedError) {
        outcomes = job.recipients.map((r) => ({
          recipientId: r.id,
          status: 'deferred',
          nextAttemptAt: this.now(),
          response: STOPPED_RESPONSE,
        }));
      } else {
        this.logger.error({ err, queueId: job.queueId, recipientDomain: job.domain }, 'delivery attempt failed unexpectedly');
        outcomes = outcomesForReply(job, INTERNAL_ERROR, this.context);
      }
    } finally {
      release?.();
    }
    return outcomes;
  }

  /** One transaction for the job, or one per recipient (on the same pooled session) when the envelope differs per recipient. */
  private async transactions(job: DeliveryJob, body: MessageParts, route: ShapingRoute | undefined): Promise<RecipientOutcome[]> {
    const envelopes = this.envelopes;
    if (!envelopes || !(await envelopes.perRecipient(job, body))) return attemptDelivery(job, body, this.context, route);
    const outcomes: RecipientOutcome[] = [];
    for (const recipient of job.recipients) {
      const own = await envelopes.prepare(job, recipient, body);
      outcomes.push(...(await attemptDelivery({ ...job, mailFrom: own.mailFrom, recipients: [recipient] }, own.body, this.context, route)));
    }
    return outcomes;
  }

  private async record(job: DeliveryJob, outcomes: RecipientOutcome[]): Promise<boolean> {
    try {
      await this.queue.recordAttempt({ job, outcomes, suppressions: suppressionsFor(job, outcomes) });
    } catch (err) {
      this.logger.error(
        { err, queueId: job.queueId, recipientDomain: job.domain },
        'could not record outcomes; retried when the lease runs out',
      );
      return false;
    }
    this.onOutcomes?.(job, outcomes);
    for (const o of outcomes) {
      this.logger.info(
        {
          queueId: job.queueId,
          recipientDomain: job.domain,
          status: o.status,
          code: o.smtpCode,
          response: o.response,
          category: o.category,
        },
        `recipient ${o.status}`,
      );
    }
    return true;
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
