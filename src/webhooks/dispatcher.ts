/**
 * The webhook dispatcher: drains the durable outbox (rows written with their events) by POSTing
 * each to its endpoint, signed. A 2xx removes the row; anything else reschedules it by
 * webhooks.retry_schedule (the last delay repeats), so an endpoint outage or a relay restart
 * delays events but loses none. Delivery is at least once: receivers dedupe by event id.
 */
import type { RelayConfig } from '../config/schema.js';
import { retryDelay } from '../delivery/retry.js';
import type { Logger } from '../log.js';
import type { OutboxEntry, Store } from '../queue/store.js';
import { postWebhook } from './post.js';

const BATCH = 50;

export class WebhookDispatcher {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private active = false;

  constructor(
    private readonly deps: { store: Store; config: RelayConfig; logger: Logger },
  ) {}

  start(): void {
    this.active = true;
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.active = false;
    clearTimeout(this.timer);
    await this.running;
  }

  private schedule(delayMs: number): void {
    if (!this.active) return;
    this.timer = setTimeout(() => {
      this.running = this.drain().finally(() => {
        this.running = undefined;
        this.schedule(this.deps.config.webhooks.poll_interval);
      });
    }, delayMs);
  }

  /** Sends every due row, a batch at a time, until none is due. */
  private async drain(): Promise<void> {
    try {
      for (;;) {
        const due = this.deps.store.dueWebhookDeliveries(Date.now(), BATCH);
        await Promise.all(due.map((entry) => this.send(entry)));
        if (due.length < BATCH || !this.active) return;
      }
    } catch (err) {
      this.deps.logger.error({ err }, 'webhook dispatch failed; retrying at the next poll');
    }
  }

  private async send(entry: OutboxEntry): Promise<void> {
    const { store, config, logger } = this.deps;
    const result = await postWebhook(entry.url, entry.secret, entry.payload, config.webhooks.timeout);
    if (result.ok) {
      store.webhookDelivered(entry.id);
      logger.debug({ webhook: entry.webhookId, event: entry.eventId }, 'webhook delivered');
      return;
    }
    const delay = retryDelay(config.webhooks.retry_schedule, entry.attempts + 1);
    store.webhookFailed(entry.id, result.error, Date.now() + delay);
    logger.warn({ webhook: entry.webhookId, event: entry.eventId, attempts: entry.attempts + 1, error: result.error, retryInMs: delay }, 'webhook delivery failed');
  }
}
