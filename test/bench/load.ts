/**
 * The benchmark's load generator, with two engines: nodemailer's SMTP client, as an application
 * would use it, and a lean raw client (raw-smtp.ts) that costs the bench little CPU. Pooled
 * clients do STARTTLS (or implicit TLS) and AUTH once and send message after message;
 * connection-per-message clients open a new TLS connection and AUTH for every message (the raw
 * engine may resume the previous TLS session). Latency is send-to-250; with an offered rate it
 * is measured from when the message was due, so a queue building up in front of a busy relay
 * counts against it.
 */
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import { RawSmtpSession } from './raw-smtp.js';

export type Engine = 'raw' | 'nodemailer';

/** One authenticated SMTP session of either engine. */
interface Client {
  send(from: string, message: { to: string; raw: Buffer }): Promise<void>;
  quit(): void;
}

export interface Target {
  port: number;
  implicitTls: boolean;
  user: string;
  pass: string;
}

export interface MessageSource {
  from: string;
  /** The recipient and raw bytes of the next message (each one unique). */
  next(): { to: string; raw: Buffer };
}

export interface LoadResult {
  accepted: number;
  failed: number;
  /** performance.now() of the first send and of the last 250. */
  firstAt: number;
  lastAt: number;
  latenciesMs: number[];
  firstError?: string;
  /** Connections that resumed an earlier TLS session (connection per message with resumeTls). */
  resumed?: number;
  /** The load generator's own CPU time (user + system) over the run, in ms. */
  cpuMs?: number;
}

async function openClient(engine: Engine, target: Target, resume?: { session?: Buffer; resumed: number }): Promise<Client> {
  if (engine === 'raw') {
    const session = await RawSmtpSession.open(target, { session: resume?.session });
    if (resume) {
      resume.session = session.session ?? resume.session;
      if (session.resumed) resume.resumed++;
    }
    return { send: (from, message) => session.send(from, message.to, message.raw), quit: () => session.quit() };
  }
  const client = await openNodemailer(target);
  return { send: (from, message) => send(client, from, message), quit: () => client.quit() };
}

async function openNodemailer(target: Target): Promise<SMTPConnection> {
  const client = new SMTPConnection({
    host: '127.0.0.1',
    port: target.port,
    secure: target.implicitTls,
    tls: { rejectUnauthorized: false },
    name: 'loadgen.bench',
    logger: false,
  });
  client.on('error', () => {});
  await new Promise<void>((resolve, reject) => client.connect((err) => (err ? reject(err) : resolve())));
  await new Promise<void>((resolve, reject) =>
    client.login({ user: target.user, pass: target.pass }, (err) => (err ? reject(err) : resolve())),
  );
  return client;
}

function send(client: SMTPConnection, from: string, message: { to: string; raw: Buffer }): Promise<void> {
  return new Promise((resolve, reject) => client.send({ from, to: [message.to] }, message.raw, (err) => (err ? reject(err) : resolve())));
}

/** Shared bookkeeping for one run: who sends message i, and the figures. */
class Run {
  readonly result: LoadResult = { accepted: 0, failed: 0, firstAt: 0, lastAt: 0, latenciesMs: [] };
  private issued = 0;

  constructor(
    private readonly total: number,
    private readonly deadline: number,
  ) {}

  /** The next message number, or undefined when the run is over. */
  take(): number | undefined {
    if (this.issued >= this.total || performance.now() >= this.deadline) return undefined;
    if (this.issued === 0) this.result.firstAt = performance.now();
    return this.issued++;
  }

  async timed(from: number, action: () => Promise<void>): Promise<void> {
    try {
      await action();
      const now = performance.now();
      this.result.accepted++;
      this.result.lastAt = now;
      this.result.latenciesMs.push(now - from);
    } catch (err) {
      this.result.failed++;
      this.result.firstError ??= (err as Error).message;
    }
  }
}

export interface PooledOptions {
  engine: Engine;
  /** Several targets (nodes) share the connections round-robin. */
  target: Target | Target[];
  source: MessageSource;
  connections: number;
  /** Stop after this many messages or this long, whichever comes first. */
  messages: number;
  durationMs: number;
  /** Offered load in messages per second; unset = as fast as the relay answers. */
  ratePerSecond?: number;
}

/** Pooled sessions: each connection authenticates once, then sends until the run is over. */
export async function runPooled(opts: PooledOptions): Promise<LoadResult> {
  const targets = Array.isArray(opts.target) ? opts.target : [opts.target];
  const clients = await Promise.all(
    Array.from({ length: opts.connections }, (_, i) => openClient(opts.engine, targets[i % targets.length]!)),
  );
  const started = performance.now();
  const run = new Run(opts.messages, started + opts.durationMs);
  const dueAt = (i: number) => (opts.ratePerSecond ? started + (i * 1000) / opts.ratePerSecond : performance.now());
  await Promise.all(
    clients.map(async (client) => {
      for (let i = run.take(); i !== undefined; i = run.take()) {
        const due = dueAt(i);
        const wait = due - performance.now();
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
        await run.timed(due, () => client.send(opts.source.from, opts.source.next()));
      }
    }),
  );
  for (const client of clients) client.quit();
  return run.result;
}

export interface PerMessageOptions {
  engine: Engine;
  /** Raw engine: offer each client's previous TLS session on its next connection. */
  resumeTls?: boolean;
  target: Target;
  source: MessageSource;
  /** Clients working at once. */
  concurrency: number;
  messages: number;
  durationMs: number;
}

/** Legacy-app behaviour: connect, TLS, AUTH, one message, QUIT, for every message. */
export async function runConnectionPerMessage(opts: PerMessageOptions): Promise<LoadResult> {
  const run = new Run(opts.messages, performance.now() + opts.durationMs);
  const resume = opts.resumeTls ? { resumed: 0 } : undefined;
  await Promise.all(
    Array.from({ length: opts.concurrency }, async () => {
      const own = resume && { session: undefined as Buffer | undefined, resumed: 0 };
      for (let i = run.take(); i !== undefined; i = run.take()) {
        const message = opts.source.next();
        await run.timed(performance.now(), async () => {
          const client = await openClient(opts.engine, opts.target, own);
          try {
            await client.send(opts.source.from, message);
          } finally {
            client.quit();
          }
        });
      }
      if (resume && own) resume.resumed += own.resumed;
    }),
  );
  if (resume) run.result.resumed = resume.resumed;
  return run.result;
}

/** The p-th percentile (0..100) of the values, nearest rank. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}
