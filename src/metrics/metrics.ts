/**
 * Prometheus metrics (prom-client), one registry per running relay so several relays in one
 * process (tests) do not mix. Counters are incremented where things happen; the queue and the
 * webhook backlog are read from the store when Prometheus scrapes.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { DeliveryJob, RecipientOutcome, Store } from '../queue/store.js';

export class RelayMetrics {
  readonly registry = new Registry();
  readonly accepted = new Counter({ name: 'relay_messages_accepted_total', help: 'Messages committed to the queue', registers: [this.registry] });
  readonly rejected = new Counter({
    name: 'relay_messages_rejected_total',
    help: 'Refused senders, recipients and messages, by reason',
    labelNames: ['reason'],
    registers: [this.registry],
  });
  readonly outcomes = new Counter({
    name: 'relay_delivery_outcomes_total',
    help: 'Delivery attempt outcomes per recipient, by status and recipient domain',
    labelNames: ['status', 'domain'],
    registers: [this.registry],
  });
  readonly latency = new Histogram({
    name: 'relay_delivery_latency_seconds',
    help: 'From acceptance to delivery, per delivered recipient',
    buckets: [0.1, 0.5, 1, 5, 15, 60, 300, 1800, 3600, 21600, 86400],
    registers: [this.registry],
  });
  readonly smtpSessions = new Counter({
    name: 'relay_smtp_sessions_total',
    help: 'Connections to the submission listeners',
    labelNames: ['listener'],
    registers: [this.registry],
  });
  readonly authFailures = new Counter({ name: 'relay_smtp_auth_failures_total', help: 'Failed SMTP AUTH attempts', registers: [this.registry] });

  constructor(store: Store) {
    collectDefaultMetrics({ register: this.registry, prefix: 'relay_' });
    const registers = [this.registry];
    // Both queue gauges come from one store.stats() per scrape.
    let queue: { at: number; value: ReturnType<Store['stats']>['queue'] } | undefined;
    const queueNow = () => {
      if (!queue || Date.now() - queue.at > 1000) queue = { at: Date.now(), value: store.stats().queue };
      return queue.value;
    };
    new Gauge({
      name: 'relay_queue_depth',
      help: 'Recipients not yet final (queued or deferred)',
      registers,
      collect() {
        this.set(queueNow().recipientsPending);
      },
    });
    new Gauge({
      name: 'relay_queue_oldest_age_seconds',
      help: 'Age of the oldest message with recipients not yet final (0 when the queue is empty)',
      registers,
      collect() {
        const oldest = queueNow().oldestReceivedAt;
        this.set(oldest ? (Date.now() - Date.parse(oldest)) / 1000 : 0);
      },
    });
    new Gauge({
      name: 'relay_webhook_backlog',
      help: 'Webhook deliveries waiting in the outbox',
      registers,
      collect() {
        this.set(store.webhookBacklog().count);
      },
    });
  }

  recordOutcomes(job: DeliveryJob, outcomes: RecipientOutcome[]): void {
    const now = Date.now();
    for (const o of outcomes) {
      this.outcomes.inc({ status: o.status, domain: job.domain });
      if (o.status === 'delivered') this.latency.observe((now - job.receivedAt) / 1000);
    }
  }
}
