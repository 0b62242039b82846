/**
 * The primary's side of the submission workers (worker.ts): forks them with node:cluster (which
 * accepts on the shared listeners and hands each connection to a worker in turn), waits until
 * every one listens, passes on SIGHUP and each new session ticket key, turns what they report
 * into wake-ups and metrics, restarts one that dies, and on stop lets each drain and exit.
 */
import cluster, { type Worker } from 'node:cluster';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../log.js';
import { reply, type ReplySubject, type SmtpReply } from '../submission/replies.js';
import type { FromWorker, ToWorker } from './messages.js';

export interface WorkerEvents {
  queued(): void;
  refused(refusal: SmtpReply): void;
  loginFailed(): void;
  session(listener: string): void;
}

/** A worker that dies sooner than this after its start is restarted after RESTART_BACKOFF_MS, not at once. */
const CRASH_LOOP_MS = 5_000;
const RESTART_BACKOFF_MS = 1_000;

export class WorkerSupervisor {
  private readonly workers = new Map<Worker, { startedAt: number; listening: boolean }>();
  private stopping = false;
  /** Replacements waiting out their backoff, with what abandons each on stop(). */
  private readonly restarts = new Map<NodeJS.Timeout, () => void>();

  constructor(
    private readonly count: number,
    private readonly deps: {
      logger: Logger;
      events: WorkerEvents;
      ticketKeys: () => Buffer;
      /** The config file workers read (RelayConfig.source). */
      configSource: string;
    },
  ) {}

  /** Forks every worker; resolves with the bound ports once all listen, rejects (and stops them) if one cannot. */
  async start(): Promise<Record<string, number>> {
    // Every fork, replacements included, runs the worker's entry file rather than the CLI.
    cluster.setupPrimary({ exec: fileURLToPath(new URL('./entry.js', import.meta.url)), args: [] });
    const started = Array.from({ length: this.count }, () => this.fork());
    try {
      const [ports] = await Promise.all(started);
      return ports!;
    } catch (err) {
      this.stopping = true;
      for (const worker of this.workers.keys()) worker.process.kill('SIGKILL');
      throw err;
    }
  }

  /** True while at least one worker listens. */
  get listening(): boolean {
    return [...this.workers.values()].some((w) => w.listening);
  }

  broadcast(message: ToWorker): void {
    for (const worker of this.workers.keys()) if (worker.isConnected()) worker.send(message);
  }

  /** Each worker drains its sessions (drain.ts), then all close their listeners and exit; resolves once all have. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const [timer, abandon] of this.restarts) {
      clearTimeout(timer);
      abandon();
    }
    this.restarts.clear();
    const workers = [...this.workers.keys()];
    const exited = workers.map((worker) => new Promise((resolve) => worker.once('exit', resolve)));
    const drained = workers.map(
      (worker) =>
        new Promise((resolve) => {
          worker.on('message', (message: FromWorker) => message.t === 'drained' && resolve(undefined));
          worker.once('exit', resolve);
        }),
    );
    this.broadcast({ t: 'stop' });
    // Until every worker has drained, each keeps its listener answering 421 (see SubmissionServer.drain).
    await Promise.all(drained);
    this.broadcast({ t: 'exit' });
    await Promise.all(exited);
  }

  private forkAfter(delayMs: number): Promise<Record<string, number>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.restarts.delete(timer);
        this.fork().then(resolve, reject);
      }, delayMs);
      this.restarts.set(timer, () => reject(new Error('the relay stopped before a submission worker was replaced')));
    });
  }

  private fork(): Promise<Record<string, number>> {
    const worker = cluster.fork({
      RELAY_WORKERS: String(this.count),
      RELAY_WORKER_CONFIG: this.deps.configSource === '(embedded default)' ? '' : this.deps.configSource,
    });
    const state = { startedAt: Date.now(), listening: false };
    this.workers.set(worker, state);
    return new Promise((resolve, reject) => {
      let failure: string | undefined;
      worker.on('message', (message: FromWorker) => {
        const { events } = this.deps;
        switch (message.t) {
          case 'hello':
            worker.send({ t: 'tickets', keys: this.deps.ticketKeys().toString('base64') } satisfies ToWorker);
            return;
          case 'queued':
            return events.queued();
          case 'session':
            return events.session(message.listener);
          case 'login-failed':
            return events.loginFailed();
          case 'refused': {
            const [enhanced = '', ...text] = message.message.split(' ');
            return events.refused(reply(message.code, enhanced, text.join(' '), message.subject as ReplySubject | undefined));
          }
          case 'listening':
            state.listening = true;
            return resolve(message.ports);
          case 'fatal':
            failure = message.message;
            return;
          case 'drained':
            return; // awaited by stop()
        }
      });
      worker.on('exit', (code, signal) => {
        this.workers.delete(worker);
        if (this.stopping) return state.listening ? undefined : reject(new Error('the relay stopped while a submission worker started'));
        // One that could not start (a listener that cannot bind) would fail again; one a signal ended is replaced.
        if (!state.listening && !signal) return reject(new Error(failure ?? `submission worker exited with ${code} before it listened`));
        // Exit 0 is a worker told to stop (by the primary or by its own SIGTERM).
        if (code === 0) return;
        this.deps.logger.error({ worker: worker.id, code, signal }, 'submission worker died; starting another');
        const replacement = this.forkAfter(Date.now() - state.startedAt < CRASH_LOOP_MS ? RESTART_BACKOFF_MS : 0);
        if (!state.listening) return resolve(replacement);
        replacement.catch((err: Error) => this.deps.logger.error({ err: err.message }, 'submission worker could not start'));
      });
    });
  }
}
