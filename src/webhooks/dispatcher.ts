/**
 * The webhook dispatcher: drains the durable outbox (rows written with their events) by POSTing
 * each to its endpoint, signed. Rows are claimed for a while before they are sent, so when
 * several nodes share the database each event is posted by one of them. A 2xx removes the row; anything else reschedules it by
 * webhooks.retry_schedule (the last delay repeats), so an endpoint outage or a relay restart
 * delays events but loses none. Delivery is at least once: receivers dedupe by event id.
 */
import type { RelayConfig } from '../config/schema.js';
import { retryDelay } from '../delivery/retry.js';
import type { Logger } from '../log.js';
import type { OutboxEntry, WebhookStore } from '../queue/storage.js';
import { webhookPayload } from './payload.js';
import { postWebhook } from './post.js';

const BATCH = 50;

export class WebhookDispatcher {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private active = false;

  constructor(private readonly deps: { webhooks: WebhookStore; config: RelayConfig; logger: Logger; node: string }) {}

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
        // Held for longer than one POST may take, so no other node sends it meanwhile.
        const lease = { owner: this.deps.node, ms: this.deps.config.webhooks.timeout * 2 + 5000 };
        const due = await this.deps.webhooks.claimDue(Date.now(), BATCH, lease);
        await Promise.all(due.map((entry) => this.send(entry)));
        if (due.length < BATCH || !this.active) return;
      }
    } catch (err) {
      this.deps.logger.error({ err }, 'webhook dispatch failed; retrying at the next poll');
    }
  }

  private async send(entry: OutboxEntry): Promise<void> {
    const { webhooks, config, logger } = this.deps;
    const event = entry.event.id;
    const result = await postWebhook(entry.url, entry.secret, JSON.stringify(webhookPayload(entry.event)), config.webhooks.timeout);
    if (result.ok) {
      await webhooks.delivered(entry.id);
      logger.debug({ webhook: entry.webhookId, event }, 'webhook delivered');
      return;
    }
    const delay = retryDelay(config.webhooks.retry_schedule, entry.attempts + 1);
    await webhooks.failed(entry.id, result.error, Date.now() + delay);
    logger.warn(
      { webhook: entry.webhookId, event, attempts: entry.attempts + 1, error: result.error, retryInMs: delay },
      'webhook delivery failed',
    );
  }
}
