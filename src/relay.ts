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
import { SubmissionServer } from './submission/server.js';
import { ConnectionLimiter } from './submission/connection-limiter.js';
import { loadCertificate } from './submission/tls.js';
import { applyConfig } from './config/reload.js';
import { HttpServer } from './http/server.js';
import { RelayMetrics } from './metrics/metrics.js';
import { MeteredPipeline } from './metrics/pipeline.js';
import { WebhookDispatcher } from './webhooks/dispatcher.js';

export interface RunningRelay {
  config: RelayConfig;
  store: Store;
  /** Bound port of each listener by name, and `http` for the HTTP API (useful when the config asks for port 0). */
  ports: Record<string, number>;
  /** SIGTERM: refuses new sessions (421 4.3.2), lets transactions and deliveries in progress finish, closes. */
  stop(): Promise<void>;
  /** SIGHUP: applies a re-read config and re-reads the TLS certificate; returns the changed keys that take a restart. */
  reload(next: RelayConfig): Promise<string[]>;
}

export async function startRelay(config: RelayConfig, options: { logger?: Logger } = {}): Promise<RunningRelay> {
  const logger = options.logger ?? createLogger(config.log.level, { redactRecipients: config.log.redact_recipients });
  const rules = loadBounceRules(config.bounces.rules!);
  const tls = await loadCertificate(config.tls, config.hostname, logger);
  const store = openStore(config);
  const metrics = new RelayMetrics(store, () => config.http.metrics_domains);
  const delivery = new DeliveryLoop({ store, config, logger, rules, onOutcomes: (job, outcomes) => metrics.recordOutcomes(job, outcomes) });
  const pipeline = new MeteredPipeline({ config, store, signer: new DkimSigner(), logger, onQueued: () => delivery.wake() }, metrics);
  const connections = new ConnectionLimiter(config);
  const servers = config.listeners.map((listener) => new SubmissionServer(listener, { config, store, logger, tls, pipeline, connections }));
  for (const server of servers) {
    server.server.server.on('connection', () => metrics.smtpSessions.inc({ listener: server.listener.name }));
  }
  const listenersDown = () => servers.filter((s) => !s.server.server.listening).map((s) => s.listener.name);
  const http = new HttpServer({ config, store, pipeline, metrics, logger, listenersDown });
  const webhooks = new WebhookDispatcher({ store, config, logger });
  const ports: Record<string, number> = {};
  try {
    for (const server of servers) ports[server.listener.name] = await server.listen();
    ports.http = await http.listen();
  } catch (err) {
    await Promise.all([...servers.map((s) => s.close()), http.close()]);
    store.close();
    throw err;
  }
  delivery.start();
  webhooks.start();
  logger.info({ config: config.source, listeners: ports, database: config.database }, 'relay started');

  return {
    config,
    store,
    ports,
    async stop() {
      await Promise.all([...servers.map((s) => s.close()), http.close()]);
      await Promise.all([delivery.stop(), webhooks.stop()]);
      store.close();
      logger.info('relay stopped');
    },
    async reload(next) {
      const renewed = await loadCertificate(next.tls, next.hostname, logger);
      const needRestart = applyConfig(config, next);
      for (const server of servers) server.reload(renewed, config.limits.max_message_bytes);
      logger.level = config.log.level;
      logger.info({ config: next.source, needRestart }, 'configuration and certificate reloaded');
      return needRestart;
    },
  };
}
