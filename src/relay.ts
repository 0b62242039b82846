/**
 * Assembles a running relay: the store, the submission listeners, the signer and the delivery
 * loop. `relay serve` and the tests start it the same way.
 */
import type { RelayConfig } from './config/schema.js';
import { loadBounceRules } from './bounces/classify.js';
import { DeliveryLoop } from './delivery/loop.js';
import { createLogger, type Logger } from './log.js';
import { openStore } from './queue/sqlite.js';
import type { Store } from './queue/store.js';
import { DkimSigner } from './signing/dkim.js';
import { SubmissionPipeline } from './submission/pipeline.js';
import { SubmissionServer } from './submission/server.js';
import { ConnectionLimiter } from './submission/connection-limiter.js';
import { loadOrCreateCertificate } from './submission/tls.js';
import { applyConfig } from './config/reload.js';

export interface RunningRelay {
  config: RelayConfig;
  store: Store;
  /** Bound port of each listener by name (useful when the config asks for port 0). */
  ports: Record<string, number>;
  /** SIGTERM: refuses new sessions (421 4.3.2), lets transactions and deliveries in progress finish, closes. */
  stop(): Promise<void>;
  /** SIGHUP: applies a re-read config and re-reads the TLS certificate; returns the changed keys that take a restart. */
  reload(next: RelayConfig): Promise<string[]>;
}

export async function startRelay(config: RelayConfig, options: { logger?: Logger } = {}): Promise<RunningRelay> {
  const logger = options.logger ?? createLogger(config.log.level, { redactRecipients: config.log.redact_recipients });
  const rules = loadBounceRules(config.bounces.rules!);
  const tls = await loadOrCreateCertificate(config.tls, config.hostname, logger);
  const store = openStore(config);
  const delivery = new DeliveryLoop({ store, config, logger, rules });
  const pipeline = new SubmissionPipeline({ config, store, signer: new DkimSigner(), logger, onQueued: () => delivery.wake() });
  const connections = new ConnectionLimiter(config);
  const servers = config.listeners.map((listener) => new SubmissionServer(listener, { config, store, logger, tls, pipeline, connections }));
  const ports: Record<string, number> = {};
  try {
    for (const server of servers) ports[server.listener.name] = await server.listen();
  } catch (err) {
    await Promise.all(servers.map((s) => s.close()));
    store.close();
    throw err;
  }
  delivery.start();
  logger.info({ config: config.source, listeners: ports, database: config.database }, 'relay started');

  return {
    config,
    store,
    ports,
    async stop() {
      await Promise.all(servers.map((s) => s.close()));
      await delivery.stop();
      store.close();
      logger.info('relay stopped');
    },
    async reload(next) {
      const renewed = await loadOrCreateCertificate(next.tls, next.hostname, logger);
      const needRestart = applyConfig(config, next);
      for (const server of servers) server.reload(renewed, config.limits.max_message_bytes);
      logger.level = config.log.level;
      logger.info({ config: next.source, needRestart }, 'configuration and certificate reloaded');
      return needRestart;
    },
  };
}
