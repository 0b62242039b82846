/**
 * Prometheus metrics (prom-client), one registry per running relay so several relays in one
 * process (tests) do not mix. The acceptance pipeline and the delivery loop tell it what they
 * decide (it is the pipeline's observer); the queue and the webhook backlog are read from
 * storage when Prometheus scrapes.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { DeliveryJob, RecipientOutcome, Stats, Storage } from '../queue/storage.js';
import type { PipelineObserver } from '../submission/pipeline.js';
import type { FeedbackObserver, ReportKind, ReportResult } from '../feedback/apply.js';
import { refusalKind } from '../submission/refusal-reasons.js';
import type { SmtpReply } from '../submission/replies.js';
import type { Shaper } from '../shaping/shaper.js';

/**
 * The `domain` label of the delivery outcomes, bounded to `limit` domains plus `other`: at each
 * scrape, the unlabelled recipient domains with the most outcomes so far take the free labels,
 * and keep them for the life of the process. Until then a domain is counted as `other`, and
 * what it had before its label stays there, so every series only ever goes up.
 */
export class DomainLabels {
  private readonly labelled = new Set<string>();
  /** Outcomes per domain still counted as `other`; bounded, so a flood of new domains cannot grow it. */
  private readonly volume = new Map<string, number>();

  constructor(private readonly limit: () => number) {}

  label(domain: string): string {
    if (this.labelled.has(domain)) return domain;
    if (this.labelled.size >= this.limit()) return 'other';
    const seen = this.volume.get(domain);
    if (seen !== undefined) this.volume.set(domain, seen + 1);
    else if (this.volume.size < MAX_TRACKED_DOMAINS) this.volume.set(domain, 1);
    return 'other';
  }

  promote(): void {
    const free = this.limit() - this.labelled.size;
    if (free <= 0) this.volume.clear();
    if (free <= 0 || this.volume.size === 0) return;
    const busiest = [...this.volume].sort((a, b) => b[1] - a[1]).slice(0, free);
    for (const [domain] of busiest) {
      this.labelled.add(domain);
      this.volume.delete(domain);
    }
  }
}

const MAX_TRACKED_DOMAINS = 10_000;

export class RelayMetrics implements PipelineObserver, FeedbackObserver {
  readonly registry = new Registry();
  private readonly domains: DomainLabels;
  readonly accepted = new Counter({
    name: 'relay_messages_accepted_total',
    help: 'Messages committed to the queue',
    registers: [this.registry],
  });
  readonly rejected = new Counter({
    name: 'relay_messages_rejected_total',
    help: 'Refused senders, recipients and messages, by reason',
    labelNames: ['reason'],
    registers: [this.registry],
  });
  readonly outcomes = new Counter({
    name: 'relay_delivery_outcomes_total',
    help: 'Delivery attempt outcomes per recipient, by status and recipient domain (the busiest domains; the rest as "other")',
    labelNames: ['status', 'domain'],
    registers: [this.registry],
    collect: () => this.domains.promote(),
  });
  readonly latency = new Histogram({
    name: 'relay_delivery_latency_seconds',
    help: 'From acceptance to delivery, per delivered recipient',
    buckets: [0.1, 0.5, 1, 5, 15, 60, 300, 1800, 3600, 21600, 86400],
    registers: [this.registry],
  });
  readonly feedbackReports = new Counter({
    name: 'relay_feedback_reports_total',
    help: 'Mail from the receiving side (later bounces, complaints, unsubscribes, auto-replies), by kind and what became of it',
    labelNames: ['kind', 'result'],
    registers: [this.registry],
  });
  readonly smtpSessions = new Counter({
    name: 'relay_smtp_sessions_total',
    help: 'Connections to the submission listeners',
    labelNames: ['listener'],
    registers: [this.registry],
  });
  readonly authFailures = new Counter({
    name: 'relay_smtp_auth_failures_total',
    help: 'Failed SMTP AUTH attempts',
    registers: [this.registry],
  });

  constructor(storage: Pick<Storage, 'queue' | 'webhooks'>, domainLabels: () => number = () => 20) {
    this.domains = new DomainLabels(domainLabels);
    collectDefaultMetrics({ register: this.registry, prefix: 'relay_' });
    const registers = [this.registry];
    // Both queue gauges come from one stats() per scrape.
    let queue: { at: number; value: Promise<Stats['queue']> } | undefined;
    const queueNow = () => {
      if (!queue || Date.now() - queue.at > 1000) queue = { at: Date.now(), value: storage.queue.stats().then((s) => s.queue) };
      return queue.value;
    };
    new Gauge({
      name: 'relay_queue_depth',
      help: 'Recipients not yet final (queued or deferred)',
      registers,
      async collect() {
        this.set((await queueNow()).recipientsPending);
      },
    });
    new Gauge({
      name: 'relay_queue_oldest_age_seconds',
      help: 'Age of the oldest message with recipients not yet final (0 when the queue is empty)',
      registers,
      async collect() {
        const oldest = (await queueNow()).oldestReceivedAt;
        this.set(oldest ? (Date.now() - oldest) / 1000 : 0);
      },
    });
    new Gauge({
      name: 'relay_webhook_backlog',
      help: 'Webhook deliveries waiting in the outbox',
      registers,
      async collect() {
        this.set((await storage.webhooks.backlog()).count);
      },
    });
  }

  refused(refusal: SmtpReply): void {
    this.rejected.inc({ reason: refusalKind(refusal).reason });
  }

  queued(): void {
    this.accepted.inc();
  }

  report(kind: ReportKind, result: ReportResult): void {
    this.feedbackReports.inc({ kind, result });
  }

  loginFailed(): void {
    this.authFailures.inc();
  }

  /** Per shaping destination: the `destination` label takes its values from the rules, so the set is bounded. */
  observeShaping(shaper: Pick<Shaper, 'states' | 'now' | 'onChange'>): void {
    const registers = [this.registry];
    const labelNames = ['destination'];
    const each = (gauge: Gauge, value: (s: ReturnType<Shaper['states']>[number], now: number) => number) => {
      gauge.reset();
      const now = shaper.now();
      for (const state of shaper.states()) gauge.set({ destination: state.rule.name }, value(state, now));
    };
    new Gauge({
      name: 'relay_shaping_level',
      help: 'Share of its configured connections and rates a shaping destination may use now (1 = all; cut by slow-down replies)',
      labelNames,
      registers,
      collect() {
        each(this, (s) => s.budget.level);
      },
    });
    new Gauge({
      name: 'relay_shaping_suspended',
      help: '1 while a shaping destination is suspended after a slow-down reply',
      labelNames,
      registers,
      collect() {
        each(this, (s, now) => (s.budget.suspended(now) ? 1 : 0));
      },
    });
    new Gauge({
      name: 'relay_shaping_connections',
      help: 'Deliveries in flight to a shaping destination, each on one connection',
      labelNames,
      registers,
      collect() {
        each(this, (s) => s.budget.inFlight);
      },
    });
    const changes = new Counter({
      name: 'relay_shaping_changes_total',
      help: 'Budget changes of a shaping destination: reason slowdown (cut and suspended) or restore (raised one step)',
      labelNames: ['destination', 'reason'],
      registers,
    });
    shaper.onChange((change) => changes.inc({ destination: change.destination, reason: change.reason }));
  }

  recordOutcomes(job: DeliveryJob, outcomes: RecipientOutcome[]): void {
    const now = Date.now();
    for (const o of outcomes) {
      this.outcomes.inc({ status: o.status, domain: this.domains.label(job.domain) });
      if (o.status === 'delivered') this.latency.observe((now - job.receivedAt) / 1000);
    }
  }
}
