/**
 * Retention: keeps the database the size of its window. Every few minutes it removes, in small
 * batches so no transaction holds the database for long, events older than `retention.events`,
 * messages whose recipients are all final once older than `retention.messages`, and login
 * failures and idempotency keys older than the windows that read them. DKIM keys replaced longer
 * ago than `signing.retire_after` lose their private key here, and the record to delete is logged.
 */
import type { RelayConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import { dkimName } from '../domains/records.js';
import type { Storage } from '../queue/storage.js';

const BATCH = 500;
const EVERY_MS = 5 * 60_000;

export class RetentionPurger {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;
  private stopped = false;

  constructor(
    private readonly deps: { storage: Pick<Storage, 'events' | 'queue' | 'limits' | 'dkimKeys'>; config: RelayConfig; logger: Logger },
  ) {}

  start(): void {
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }

  private schedule(delayMs: number): void {
    this.timer = setTimeout(() => {
      this.running = this.purge().finally(() => {
        this.running = undefined;
        if (!this.stopped) this.schedule(EVERY_MS);
      });
    }, delayMs);
    this.timer.unref();
  }

  /** One pass; returns what it removed. */
  async purge(now = Date.now()): Promise<{ events: number; messages: number }> {
    const { storage, config, logger } = this.deps;
    const removed = { events: 0, messages: 0 };
    try {
      removed.events = await drain(
        (n) => storage.events.purge(now - config.retention.events, n),
        () => !this.stopped,
      );
      removed.messages = await drain(
        (n) => storage.queue.purgeFinished(now - config.retention.messages, n),
        () => !this.stopped,
      );
      const { auth_failure_window, auth_lockout, idempotency_window } = config.limits;
      await storage.limits.prune(now - Math.max(auth_failure_window + auth_lockout, idempotency_window));
      if (removed.events + removed.messages > 0) logger.info(removed, 'retention: purged old events and messages');
      for (const key of await storage.dkimKeys.retireDue(now)) {
        const record = dkimName(key.domain, key.selector);
        logger.info({ domain: key.domain, selector: key.selector, record }, `DKIM key retired: delete the TXT record at ${record}`);
      }
    } catch (err) {
      logger.error({ err }, 'retention purge failed; trying again later');
    }
    return removed;
  }
}

/** Repeats a batch until it comes back short (or the purger stops). */
async function drain(batch: (limit: number) => Promise<number>, keepGoing: () => boolean): Promise<number> {
  let total = 0;
  for (;;) {
    const n = await batch(BATCH);
    total += n;
    if (n < BATCH || !keepGoing()) return total;
  }
}
