/**
 * Assembles a running relay: storage, this node's membership, the submission listeners, the
 * signer, the delivery loop, webhooks and retention. `relay serve` and the tests start it the
 * same way.
 */
import { isDeepStrictEqual } from 'node:util';
import { AuditTrail } from './audit/trail.js';
import type { RelayConfig } from './config/schema.js';
import { loadBounceRules } from './bounces/classify.js';
import { BounceNotifier } from './bounces/notifier.js';
import { NodeMembership, nodeName } from './cluster/node.js';
import { DeliveryLoop } from './delivery/loop.js';
import type { Clock } from './envelope/time.js';
import { KeyActivationWatcher } from './domains/key-activation.js';
import { createLogger, type Logger } from './log.js';
import { openStorage } from './queue/open.js';
import type { Storage } from './queue/storage.js';
import { RetentionPurger } from './retention/purger.js';
import { DkimSigner } from './signing/dkim.js';
import { SubmissionPipeline } from './submission/pipeline.js';
import { SubmissionServer } from './submission/server.js';
import { ConnectionLimiter } from './submission/connection-limiter.js';
import { loadCertificate, type TlsMaterial } from './submission/tls.js';
import { WorkerSupervisor } from './workers/supervisor.js';
import { SessionTicketKeys } from './submission/session-tickets.js';
import { applyConfig } from './config/reload.js';
import { HttpServer } from './http/server.js';
import { RelayMetrics } from './metrics/metrics.js';
import { WebhookDispatcher } from './webhooks/dispatcher.js';
import { shapingRulesFor } from './shaping/rules.js';
import { Shaper } from './shaping/shaper.js';
import { createResolver } from './delivery/resolver.js';
import { TlsReporter } from './outbound-tls/reports.js';
import { FeedbackProcessor } from './feedback/apply.js';
import { OutboundFeedback } from './feedback/outbound.js';
import { FeedbackTokens } from './feedback/tokens.js';
import { InboundServer } from './inbound/server.js';

/** How often another node's new mail may wake this node's scheduler. */
const WAKE_HINT_MS = 100;

export interface RunningRelay {
  config: RelayConfig;
  storage: Storage;
  /** This node's name among those sharing the database. */
  node: string;
  /** Bound port of each listener by name, and `http` for the HTTP API (useful when the config asks for port 0). */
  ports: Record<string, number>;
  /** Daily TLS-RPT reports; sendDue() reports the days the relay's clock has seen end. */
  tlsReports: TlsReporter;
  /** SIGTERM: refuses new sessions (421 4.3.2), lets transactions and deliveries in progress finish, closes. */
  stop(): Promise<void>;
  /**
   * SIGHUP: applies a re-read config and re-reads the TLS certificate; returns the changed keys
   * that take a restart. Recorded in the audit log under `actor`.
   */
  reload(next: RelayConfig, actor?: string): Promise<string[]>;
}

export interface RelayOptions {
  logger?: Logger;
  /** The time rates, quotas, lockouts, retries, TLS policies and TLS reports are counted in; tests move it. */
  clock?: Clock;
  /**
   * Submission workers (src/workers): above 1, the submission listeners run in that many forked
   * processes and this one keeps delivery, the HTTP API, the inbound listeners and the rest. Only
   * `relay serve` asks for them (node:cluster forks the running script).
   */
  workers?: number;
}

export async function startRelay(config: RelayConfig, options: RelayOptions = {}): Promise<RunningRelay> {
  const clock = options.clock ?? Date.now;
  const logger = options.logger ?? createLogger(config.log.level, { redactRecipients: config.log.redact_recipients });
  const rules = loadBounceRules(config.bounces.rules!);
  const shaper = new Shaper({ rules: shapingRulesFor(config), logger });
  const tls = await loadCertificate(config.tls, config.hostname, logger);
  const storage = await openStorage(config, logger);
  const node = nodeName(config);
  const membership = new NodeMembership({ storage, config, logger, name: node });
  try {
    await membership.join();
  } catch (err) {
    await storage.close();
    throw err;
  }
  const metrics = new RelayMetrics(storage, () => config.http.metrics_domains);
  metrics.observeShaping(shaper);
  let tokens: FeedbackTokens;
  try {
    tokens = new FeedbackTokens(await storage.feedback.secret());
  } catch (err) {
    await membership.leave();
    await storage.close();
    throw err;
  }
  const signer = new DkimSigner();
  const feedback = new FeedbackProcessor({ config, feedback: storage.feedback, tokens, rules, logger, observer: metrics });
  const wake = () => delivery.wake();
  const bounces = new BounceNotifier({ config, queue: storage.queue, suppressions: storage.suppressions, logger, onQueued: wake });
  const delivery = new DeliveryLoop({
    queue: storage.queue,
    node,
    bounces,
    config,
    logger,
    rules,
    tlsPolicies: storage.tlsPolicies,
    clock,
    onOutcomes: (job, outcomes) => metrics.recordOutcomes(job, outcomes),
    shaper,
    perRecipient: new OutboundFeedback({ config, tokens, storage, signer }),
  });
  // Other nodes' new mail wakes this node's scheduler at most every WAKE_HINT_MS: the node that
  // took a message wakes itself at once, and a wake per message on every node would cost each
  // node a claim per message. Polling stays the rule.
  let hinted: NodeJS.Timeout | undefined;
  const hint = () => {
    hinted ??= setTimeout(() => {
      hinted = undefined;
      wake();
    }, WAKE_HINT_MS);
  };
  const stopListening = storage.onWork?.(hint);
  const pipeline = new SubmissionPipeline({ config, storage, signer, logger, onQueued: wake, observer: metrics, clock });
  const connections = new ConnectionLimiter(config);
  const inbound = config.listeners
    .filter((listener) => listener.kind === 'inbound')
    .map((listener) => new InboundServer(listener, { config, logger, tls, processor: feedback, connections }));
  for (const server of inbound) {
    server.server.server.on('connection', () => metrics.smtpSessions.inc({ listener: server.listener.name }));
  }
  const submission = (options.workers ?? 1) > 1 ? inWorkers(options.workers!) : inProcess();
  const listenersDown = () => [
    ...inbound.filter((s) => !s.server.server.listening).map((s) => s.listener.name),
    ...submission.listenersDown(),
  ];
  const audit = new AuditTrail(storage.audit);
  const http = new HttpServer({
    config,
    storage,
    pipeline,
    metrics,
    logger,
    listenersDown,
    audit,
    shaper,
    feedback: { tokens, processor: feedback },
  });
  const webhooks = new WebhookDispatcher({ webhooks: storage.webhooks, config, logger, node });
  const retention = new RetentionPurger({ storage, config, logger });
  const keyActivation = new KeyActivationWatcher({ keys: storage.dkimKeys, config, logger });
  const tlsReports = new TlsReporter({
    config,
    store: storage.tlsPolicies,
    queue: storage.queue,
    domains: storage.domains,
    signer,
    resolver: createResolver(config),
    logger,
    clock,
    onQueued: wake,
  });
  const ports: Record<string, number> = {};
  try {
    Object.assign(ports, await submission.listen());
    for (const server of inbound) ports[server.listener.name] = await server.listen();
    ports.http = await http.listen();
  } catch (err) {
    await Promise.all([submission.close(), ...inbound.map((s) => s.close()), http.close()]);
    await membership.leave();
    await storage.close();
    throw err;
  }
  submission.tickets.start();
  delivery.start();
  webhooks.start();
  retention.start();
  keyActivation.start();
  tlsReports.start();
  logger.info(
    { config: config.source, listeners: ports, database: redactDatabase(config.database), storage: storage.kind, node },
    'relay started',
  );

  /** The submission listeners in this process. */
  function inProcess(): Submission {
    const tickets = new SessionTicketKeys((keys) => servers.forEach((s) => s.setTicketKeys(keys)));
    const servers = config.listeners
      .filter((listener) => listener.kind !== 'inbound')
      .map((listener) => new SubmissionServer(listener, { config, logger, tls, ticketKeys: tickets.current, pipeline, connections }));
    for (const server of servers) {
      server.server.server.on('connection', () => metrics.smtpSessions.inc({ listener: server.listener.name }));
    }
    return {
      tickets,
      async listen() {
        const ports: Record<string, number> = {};
        for (const server of servers) ports[server.listener.name] = await server.listen();
        return ports;
      },
      listenersDown: () => servers.filter((s) => !s.server.server.listening).map((s) => s.listener.name),
      reload: (renewed) => servers.forEach((s) => s.reload(renewed, config.limits.max_message_bytes)),
      close: () => Promise.all(servers.map((s) => s.close())).then(() => {}),
    };
  }

  /** The submission listeners in forked workers, which commit to storage themselves and tell this process. */
  function inWorkers(count: number): Submission {
    const tickets = new SessionTicketKeys((keys) => supervisor.broadcast({ t: 'tickets', keys: keys.toString('base64') }));
    const supervisor = new WorkerSupervisor(count, {
      logger,
      configSource: config.source,
      ticketKeys: () => tickets.current,
      events: {
        queued: () => {
          metrics.queued();
          wake();
        },
        refused: (refusal) => metrics.refused(refusal),
        loginFailed: () => metrics.loginFailed(),
        session: (listener) => metrics.smtpSessions.inc({ listener }),
      },
    });
    return {
      tickets,
      listen: () => supervisor.start(),
      listenersDown: () => (supervisor.listening ? [] : config.listeners.filter((l) => l.kind !== 'inbound').map((l) => l.name)),
      // Each worker re-reads the config file and the certificates itself.
      reload: () => supervisor.broadcast({ t: 'reload' }),
      close: () => supervisor.stop(),
    };
  }

  return {
    config,
    storage,
    node,
    ports,
    tlsReports,
    async stop() {
      await Promise.all([submission.close(), ...inbound.map((s) => s.close()), http.close()]);
      stopListening?.();
      clearTimeout(hinted);
      submission.tickets.stop();
      await Promise.all([delivery.stop(), webhooks.stop(), retention.stop(), keyActivation.stop(), tlsReports.stop()]);
      await membership.leave();
      await storage.close();
      logger.info('relay stopped');
    },
    async reload(next, actor = 'signal:SIGHUP') {
      const renewed = await loadCertificate(next.tls, next.hostname, logger);
      // Read before anything is applied, so that a rules file that does not load keeps the running config whole.
      const shaping = shapingRulesFor(next);
      // Key names only: values may hold tokens.
      const changed = (Object.keys(next) as (keyof RelayConfig)[]).filter(
        (key) => key !== 'source' && key !== 'baseDir' && !isDeepStrictEqual(config[key], next[key]),
      );
      const needRestart = applyConfig(config, next);
      shaper.update(shaping);
      submission.reload(renewed);
      for (const server of inbound) server.reload(renewed);
      logger.level = config.log.level;
      logger.info({ config: next.source, needRestart }, 'configuration and certificate reloaded');
      // The reload has taken effect: a failure to record it must not report it as failed.
      await audit
        .record({ actor, action: 'config.reload', target: next.source, change: { changed, need_restart: needRestart } })
        .catch((err: unknown) => logger.error({ err }, 'could not record the reload in the audit log'));
      return needRestart;
    },
  };
}

/** The submission listeners, in this process or in workers. */
interface Submission {
  tickets: SessionTicketKeys;
  listen(): Promise<Record<string, number>>;
  listenersDown(): string[];
  reload(renewed: TlsMaterial): void;
  close(): Promise<void>;
}

/** The database setting for logs: a URL's password masked. */
export function redactDatabase(database: string): string {
  return database.replace(/^(postgres(?:ql)?:\/\/[^:/@]+:)[^@]*@/i, '$1***@');
}
