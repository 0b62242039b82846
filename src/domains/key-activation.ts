/**
 * In a running relay: looks up, every `signing.key_check_interval`, the records of keys rotated
 * with --auto, and activates each domain's new key(s) once all are found published. Every node
 * may do it; the activation is one transaction that does nothing when another node was first.
 */
import type { RelayConfig } from '../config/schema.js';
import { createResolver } from '../delivery/resolver.js';
import type { Logger } from '../log.js';
import type { DkimKeyStore } from '../queue/storage.js';
import { activateIfAuto, checkKeys } from './dkim-keys.js';

export class KeyActivationWatcher {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;
  private stopped = false;

  constructor(private readonly deps: { keys: DkimKeyStore; config: RelayConfig; logger: Logger }) {}

  start(): void {
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  private schedule(delayMs: number): void {
    this.timer = setTimeout(() => {
      this.running = this.check().finally(() => {
        this.running = undefined;
        if (!this.stopped) this.schedule(this.deps.config.signing.key_check_interval);
      });
    }, delayMs);
    this.timer.unref();
  }

  /** One pass; returns the domains whose new keys now sign. */
  async check(now = Date.now()): Promise<string[]> {
    const { keys, config, logger } = this.deps;
    const activated: string[] = [];
    try {
      const resolver = createResolver(config);
      for (const domain of new Set((await keys.pendingAuto()).map((k) => k.domain))) {
        const checks = await checkKeys(keys, resolver, domain, now);
        const active = await activateIfAuto(keys, domain, checks, { now, retireAfter: config.signing.retire_after });
        if (active.length === 0) continue;
        activated.push(domain);
        logger.info({ domain, selectors: active.map((k) => k.selector) }, 'DKIM key published and activated');
      }
    } catch (err) {
      logger.error({ err }, 'DKIM key check failed; trying again later');
    }
    return activated;
  }
}
