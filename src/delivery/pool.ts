/**
 * Outbound SMTP sessions and the limits on them. A session to an MX host is kept open after a
 * message for the next one to the same host (RSET before reuse, QUIT after
 * delivery.idle_timeout idle); deliveries wait for a slot under delivery.concurrency in all and
 * delivery.per_domain_concurrency per recipient domain, and each holds at most one session.
 */
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import type { RelayConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { SessionTlsOptions } from '../outbound-tls/policy.js';
import type { TlsInfo } from '../queue/storage.js';
import { replyFromError, type Reply } from './reply.js';

/** Inactivity allowed within a transaction; RFC 5321 section 4.5.3.2 suggests 5 to 10 minutes. */
const SOCKET_TIMEOUT = 5 * 60_000;

export class Session {
  /** Transactions run on this session, for a destination's messages_per_connection. */
  transactions = 0;
  /** Settles once the socket is closed. */
  readonly ended: Promise<void>;
  /** How the session is protected, once outbound-tls has checked it. */
  tls: TlsInfo | undefined;

  constructor(
    readonly host: string,
    readonly address: string,
    readonly connection: SMTPConnection,
    /** The shaping destination the session counts against, if any. */
    readonly destination?: string,
  ) {
    this.ended = new Promise((resolve) => connection.once('end', () => resolve()));
  }

  get alive(): boolean {
    return !this.connection.destroyed;
  }

  /** For replies the server never sent: "mx.example.test[192.0.2.1]:25". */
  get peer(): string {
    return `${this.host}[${this.address}]:${this.connection.port}`;
  }
}

/** A host that could not be used for this delivery; the next host is tried. */
export class SessionError extends Error {
  constructor(readonly reply: Reply) {
    super(reply.text);
  }
}

export class PoolClosedError extends Error {
  constructor() {
    super('delivery is stopping');
  }
}

/** A shaping destination's limit on connections, open and closing alike. */
export interface ConnectionBudget {
  destination: string;
  maxConnections?: number;
}

interface Waiter {
  domain: string;
  grant: (release: () => void) => void;
  refuse: (err: Error) => void;
}

export class ConnectionPool {
  private readonly sessions = new Set<Session>();
  private readonly idle = new Map<Session, NodeJS.Timeout>();
  private readonly waiting: Waiter[] = [];
  private readonly activeByDomain = new Map<string, number>();
  /** Each shaping destination's sessions until their sockets are closed. */
  private readonly byDestination = new Map<string, Set<Session>>();
  private active = 0;
  private closed = false;

  constructor(
    private readonly config: RelayConfig,
    private readonly logger: Logger,
  ) {}

  /** Waits for a delivery slot for a recipient domain; call the returned function when done. */
  slot(domain: string): Promise<() => void> {
    if (this.closed) return Promise.reject(new PoolClosedError());
    return new Promise((grant, refuse) => {
      this.waiting.push({ domain, grant, refuse });
      this.grantSlots();
    });
  }

  /** An idle session to one of the hosts, first host first, that `accept`s and still answers RSET. */
  async reuse(hosts: readonly string[], accept: (session: Session) => boolean = () => true): Promise<Session | undefined> {
    for (const host of hosts) {
      for (const session of [...this.idle.keys()].filter((s) => s.host === host && accept(s))) {
        // Another delivery may have taken it while this one waited for an RSET reply.
        if (!this.idle.has(session)) continue;
        this.unidle(session);
        if (await reset(session)) return session;
        this.discard(session);
      }
    }
    return undefined;
  }

  /**
   * Opens a session to one address of a host; SessionError when the host cannot be used. The
   * certificate is checked by outbound-tls once the session is open, before any mail goes out.
   * With a shaping destination's `budget`, waits until the destination has a connection to spare.
   */
  async open(host: string, address: string, tls: SessionTlsOptions, budget?: ConnectionBudget): Promise<Session> {
    if (this.closed) throw new PoolClosedError();
    if (budget?.maxConnections !== undefined) await this.roomFor(budget.destination, budget.maxConnections);
    if (this.closed) throw new PoolClosedError();
    this.makeRoom();
    const { delivery } = this.config;
    const connection = new SMTPConnection({
      host: address,
      port: delivery.smtp_port,
      name: this.config.hostname,
      ignoreTLS: !tls.starttls,
      // Without STARTTLS (or when it fails) the session stays in cleartext; outbound-tls refuses it where TLS is required.
      opportunisticTLS: true,
      // The handshake accepts any certificate: whether this one is good enough depends on the
      // recipient's policy (MX certificates are commonly self-signed without MTA-STS or DANE).
      tls: { rejectUnauthorized: false, servername: host, ca: tls.ca },
      connectionTimeout: delivery.connect_timeout,
      greetingTimeout: delivery.connect_timeout,
      socketTimeout: SOCKET_TIMEOUT,
      logger: false,
    });
    const session = new Session(host, address, connection, budget?.destination);
    if (budget) this.track(session, budget.destination);
    // Errors also reach whoever waits on connect() or send(); this keeps them from being unhandled.
    connection.on('error', (err) => this.logger.debug({ host: session.peer, err: err.message }, 'outbound session error'));
    connection.once('end', () => this.forget(session));
    this.sessions.add(session);

    try {
      await new Promise<void>((resolve, reject) => {
        connection.once('error', reject);
        connection.connect((err) => {
          connection.off('error', reject);
          if (err) reject(err);
          else resolve();
        });
      });
    } catch (err) {
      this.discard(session);
      throw new SessionError(replyFromError(err, session.peer));
    }
    return session;
  }

  /** Returns a session after a transaction; kept for reuse when it is still in a usable state. */
  release(session: Session, reusable: boolean): void {
    if (!reusable || this.closed || !session.alive) {
      this.discard(session);
      return;
    }
    const timer = setTimeout(() => this.discard(session), this.config.delivery.idle_timeout);
    timer.unref();
    this.idle.set(session, timer);
  }

  /** Refuses waiting deliveries and closes idle sessions; `abort` also ends sessions in use. */
  close(abort = false): void {
    this.closed = true;
    for (const waiter of this.waiting.splice(0)) waiter.refuse(new PoolClosedError());
    for (const session of [...this.sessions]) {
      if (this.idle.has(session)) this.discard(session);
      else if (abort) this.discard(session, false);
    }
  }

  private grantSlots(): void {
    const perDomain = this.config.delivery.per_domain_concurrency;
    for (let i = 0; i < this.waiting.length && this.active < this.config.delivery.concurrency;) {
      const waiter = this.waiting[i]!;
      const used = this.activeByDomain.get(waiter.domain) ?? 0;
      if (used >= perDomain) {
        i++;
        continue;
      }
      this.waiting.splice(i, 1);
      this.active++;
      this.activeByDomain.set(waiter.domain, used + 1);
      let released = false;
      waiter.grant(() => {
        if (released) return;
        released = true;
        this.releaseSlot(waiter.domain);
      });
    }
  }

  private releaseSlot(domain: string): void {
    this.active--;
    const used = (this.activeByDomain.get(domain) ?? 1) - 1;
    if (used === 0) this.activeByDomain.delete(domain);
    else this.activeByDomain.set(domain, used);
    this.grantSlots();
  }

  private track(session: Session, destination: string): void {
    const sessions = this.byDestination.get(destination) ?? new Set<Session>();
    this.byDestination.set(destination, sessions.add(session));
    void session.ended.then(() => {
      sessions.delete(session);
      if (sessions.size === 0 && this.byDestination.get(destination) === sessions) this.byDestination.delete(destination);
    });
  }

  /**
   * Keeps a destination within its connections, the ones still closing included, so the peer
   * never sees one more: its idle sessions (to its other hosts) are closed, and the closing ones
   * waited for, up to delivery.connect_timeout. The shaper keeps its busy ones below the limit.
   */
  private async roomFor(destination: string, maxConnections: number): Promise<void> {
    const sessions = this.byDestination.get(destination);
    if (!sessions || sessions.size < maxConnections) return;
    for (const session of [...this.idle.keys()]) if (session.destination === destination) this.discard(session);
    const closing = [...sessions].filter((s) => !this.sessions.has(s));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, this.config.delivery.connect_timeout)));
    await Promise.race([Promise.all(closing.map((s) => s.ended)), timeout]);
    clearTimeout(timer);
  }

  /** Keeps open sockets within delivery.concurrency by closing the longest idle session. */
  private makeRoom(): void {
    if (this.sessions.size < this.config.delivery.concurrency) return;
    const oldestIdle = this.idle.keys().next();
    if (!oldestIdle.done) this.discard(oldestIdle.value);
  }

  private unidle(session: Session): void {
    clearTimeout(this.idle.get(session));
    this.idle.delete(session);
  }

  /** Ends a session: QUIT when it is between transactions, otherwise the socket is dropped. */
  private discard(session: Session, graceful = true): void {
    const wasOpen = this.sessions.has(session);
    this.forget(session);
    if (!wasOpen || !session.alive) return;
    if (graceful && session.connection.stage === 'connected') session.connection.quit();
    else session.connection.close();
  }

  private forget(session: Session): void {
    this.unidle(session);
    this.sessions.delete(session);
  }
}

function reset(session: Session): Promise<boolean> {
  if (!session.alive) return Promise.resolve(false);
  return new Promise((resolve) => session.connection.reset((err) => resolve(!err)));
}
