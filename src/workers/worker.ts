/**
 * A submission worker: one of the processes `relay serve` forks (`workers`) to spread TLS, AUTH,
 * parsing and DKIM signing over the cores. It serves the SMTP listeners, shared with the other
 * workers through node:cluster, and commits what it accepts to storage itself (SQLite in WAL mode
 * takes writers from several processes one at a time; PostgreSQL takes them at once), so a 250
 * still follows its own durable commit. Delivery, the HTTP API, webhooks, retention and node
 * membership stay in the primary, which a worker tells of each commit (to wake delivery at once)
 * and of what metrics count. It stops on the primary's word (SIGTERM there) or on its own
 * SIGTERM or SIGINT by draining like the single process does, and dies with the primary.
 */
import cluster from 'node:cluster';
import { rereadConfig } from '../config/load.js';
import { applyConfig } from '../config/reload.js';
import type { RelayConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import { openStorage } from '../queue/open.js';
import { DkimSigner } from '../signing/dkim.js';
import { ConnectionLimiter } from '../submission/connection-limiter.js';
import { SubmissionPipeline, type PipelineObserver } from '../submission/pipeline.js';
import { SubmissionServer } from '../submission/server.js';
import { loadCertificate } from '../submission/tls.js';
import type { FromWorker, ToWorker } from './messages.js';

export async function runSubmissionWorker(config: RelayConfig, baseLogger: Logger): Promise<void> {
  const logger = baseLogger.child({ worker: cluster.worker!.id });
  const tell = (message: FromWorker) => {
    if (process.connected) process.send!(message);
  };
  // Without the primary nobody delivers, reloads or stops this worker.
  process.on('disconnect', () => process.exit(1));
  // SIGHUP reaches the primary, which passes it on; a terminal's hang-up must not kill a worker.
  process.on('SIGHUP', () => {});
  // Messages and signals are taken from the start: one that arrives while this worker starts acts once it runs.
  let running: { servers: SubmissionServer[]; stop(by: Stopper): Promise<void> } | undefined;
  let stopRequested: Stopper | undefined;
  let exitAllowed!: () => void;
  const everyWorkerDrained = new Promise<void>((resolve) => (exitAllowed = resolve));
  let ticketKeys: Buffer | undefined;
  let gotKeys!: () => void;
  const firstKeys = new Promise<void>((resolve) => (gotKeys = resolve));
  const stop = (by: Stopper) => {
    stopRequested ??= by;
    if (running) void running.stop(by);
  };
  process.on('message', (message: ToWorker) => {
    switch (message.t) {
      case 'tickets':
        ticketKeys = Buffer.from(message.keys, 'base64');
        for (const server of running?.servers ?? []) server.setTicketKeys(ticketKeys);
        gotKeys();
        break;
      case 'reload':
        // The primary has read the same file already and logs the outcome; a failure here keeps this worker's config.
        if (running)
          reload(running.servers).catch((err: Error) =>
            logger.error({ err: err.message }, 'reload failed; keeping the running configuration'),
          );
        break;
      case 'stop':
        stop('primary');
        break;
      case 'exit':
        exitAllowed();
        break;
    }
  });
  process.on('SIGTERM', () => stop('signal'));
  process.on('SIGINT', () => stop('signal'));
  const reload = async (servers: SubmissionServer[]) => {
    const next = rereadConfig(config);
    const renewed = await loadCertificate(next.tls, next.hostname, logger);
    applyConfig(config, next);
    for (const server of servers) server.reload(renewed, config.limits.max_message_bytes);
    logger.level = config.log.level;
  };
  // A message sent before this process had its listener would be lost: the primary answers this with the ticket key.
  tell({ t: 'hello' });

  const tls = await loadCertificate(config.tls, config.hostname, logger);
  const storage = await openStorage(config, logger);
  const observer: PipelineObserver = {
    refused: (refusal) => tell({ t: 'refused', code: refusal.responseCode, message: refusal.message, subject: refusal.subject }),
    queued: () => {},
    loginFailed: () => tell({ t: 'login-failed' }),
  };
  const pipeline = new SubmissionPipeline({
    config,
    storage,
    signer: new DkimSigner(),
    logger,
    onQueued: () => tell({ t: 'queued' }),
    observer,
  });
  const connections = new ConnectionLimiter(config, Number(process.env.RELAY_WORKERS ?? 1));
  await firstKeys;
  // Inbound listeners stay in the primary, beside the feedback they feed.
  const servers = config.listeners
    .filter((listener) => listener.kind !== 'inbound')
    .map((listener) => new SubmissionServer(listener, { config, logger, tls, ticketKeys: ticketKeys!, pipeline, connections }));
  for (const server of servers) server.server.server.on('connection', () => tell({ t: 'session', listener: server.listener.name }));

  const ports: Record<string, number> = {};
  try {
    for (const server of servers) ports[server.listener.name] = await server.listen();
  } catch (err) {
    tell({ t: 'fatal', message: (err as Error).message });
    await storage.close();
    process.exit(1);
  }

  let stopping: Promise<void> | undefined;
  running = {
    servers,
    stop: (by) =>
      (stopping ??= (async () => {
        await Promise.all(servers.map((s) => s.drain()));
        if (by === 'primary') {
          tell({ t: 'drained' });
          await everyWorkerDrained;
        }
        await Promise.all(servers.map((s) => s.closeDrained()));
        await storage.close();
        process.exit(0);
      })()),
  };
  tell({ t: 'listening', ports });
  if (stopRequested) void running.stop(stopRequested);
}

/**
 * Who stops this worker: the primary (its SIGTERM) has every worker drain before any closes its
 * listener; a signal to this worker alone (an operator's kill) drains and exits at once.
 */
type Stopper = 'primary' | 'signal';
