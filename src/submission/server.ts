/**
 * The submission listeners (Postfix's "smtpd"): implicit TLS or STARTTLS and AUTH PLAIN/LOGIN,
 * then each SMTP step handed to the acceptance pipeline (sender policy at MAIL FROM, recipient
 * checks at RCPT TO, cleanup, signing and the durable enqueue at the end of DATA).
 */
import { SMTPServer, type SMTPServerSession } from 'smtp-server';
import type { RelayConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import { newQueueId } from '../queue/ids.js';
import type { CredentialRecord } from '../queue/storage.js';
import type { ConnectionLimiter } from './connection-limiter.js';
import { guardAccept, type AcceptedConnections } from './accept-guard.js';
import { hideAuthBeforeTls } from './auth-before-tls.js';
import { coalesceReplies, greetAtOnce } from './smtp-server-internals.js';
import { readDataWithin } from './data-within.js';
import type { SubmissionPipeline } from './pipeline.js';
import { internalFailureReply } from './faults.js';
import { reply, SmtpReply, useExactEnhancedCodes } from './replies.js';
import type { TlsMaterial } from './tls.js';
import { closeListener, drainSessions, shuttingDown } from './drain.js';
import { StepDeadlines } from './step-deadline.js';
import { listenSmtp } from '../bind-error.js';
import { SESSION_TIMEOUT_S } from './session-tickets.js';

type Listener = RelayConfig['listeners'][number];

export interface SubmissionDeps {
  config: RelayConfig;
  logger: Logger;
  tls: TlsMaterial;
  /** The session ticket key (session-tickets.ts); setTicketKeys() replaces it. */
  ticketKeys: Buffer;
  pipeline: SubmissionPipeline;
  /** Shared by all listeners: max_clients and max_clients_per_ip count every connection. */
  connections: ConnectionLimiter;
}

/** Per-transaction state, keyed by session id (smtp-server resets the envelope itself). */
interface Transaction {
  queueId: string;
}

export class SubmissionServer {
  readonly server: SMTPServer;
  private readonly transactions = new Map<string, Transaction>();
  private readonly pipeline: SubmissionPipeline;
  /** Failed AUTH attempts per session; at limits.auth_failures_per_connection the session is closed. */
  private readonly authFailures = new Map<string, number>();
  private readonly deadlines: StepDeadlines;
  private readonly accepted: AcceptedConnections;
  /** Set by close(): new sessions are refused with 421 4.3.2 while the transactions in progress finish. */
  private draining = false;

  constructor(
    readonly listener: Listener,
    private readonly deps: SubmissionDeps,
  ) {
    useExactEnhancedCodes();
    hideAuthBeforeTls();
    this.pipeline = deps.pipeline;
    const { config, tls } = deps;
    this.server = new SMTPServer({
      name: config.hostname,
      banner: 'Relay ESMTP submission',
      secure: listener.tls === 'implicit',
      key: tls.key,
      cert: tls.cert,
      minVersion: 'TLSv1.2',
      ticketKeys: deps.ticketKeys,
      sessionTimeout: SESSION_TIMEOUT_S,
      // Tickets (and session ids) are valid in every process of this relay, not only the one that issued them.
      sessionIdContext: 'relay-submission',
      size: config.limits.max_message_bytes,
      rejectOversized: true,
      hideENHANCEDSTATUSCODES: false,
      hideDSN: true,
      authMethods: ['PLAIN', 'LOGIN'],
      authRequiredMessage: '5.7.0 Authentication required',
      logger: false,
      ...connectionOptions(config.limits),
      onConnect: (session, callback) => callback(this.admit(session)),
      onAuth: (auth, session, callback) => {
        this.deadlines.arm(session.id);
        this.pipeline.authenticate(auth.username ?? '', auth.password ?? '', session.remoteAddress).then(
          (credential) => callback(null, { user: credential }),
          (err: unknown) => callback(this.authRefused(session, err)),
        );
      },
      // guard() turns every rejection into a reply, so the promise handed to `void` cannot reject.
      onMailFrom: (address, session, callback) => {
        void this.guard(this.mailFrom(address.address, session)).then(callback);
      },
      onRcptTo: (address, session, callback) => {
        void this.guard(this.rcptTo(address.address, session)).then(callback);
      },
      onData: (stream, session, callback) => {
        this.deadlines.arm(session.id);
        const limit = this.server.options.size!;
        readDataWithin(stream, limit, (chunks, size) => {
          // smtp-server answers 552 5.3.4 itself for an oversized message (rejectOversized).
          if (stream.sizeExceeded) return callback();
          if (size > limit) return callback(tooBig(limit));
          this.deadlines.clear(session.id);
          const answer = (err: Error | null, text?: string) => {
            this.deadlines.arm(session.id);
            callback(err, text);
          };
          this.data(chunks, session).then((queueId) => answer(null, `2.0.0 Ok: queued as ${queueId}`), answer);
        });
      },
      onClose: (session) => {
        this.endTransaction(session.id);
        this.authFailures.delete(session.id);
        this.deadlines.clear(session.id);
        this.accepted.sessionClosed(session);
      },
    });
    greetAtOnce(this.server);
    coalesceReplies(this.server);
    this.deadlines = new StepDeadlines(this.server, () => config.limits.command_timeout);
    this.accepted = guardAccept(this.server, {
      listener: listener.name,
      implicitTls: listener.tls === 'implicit',
      connections: deps.connections,
      handshakeTimeoutMs: () => config.limits.tls_handshake_timeout,
      logger: deps.logger,
    });
  }

  listen(): Promise<number> {
    return listenSmtp(this.server, this.listener, this.deps.logger);
  }

  /** Stops taking sessions and waits up to timeoutMs for the transactions in progress (see drain.ts). */
  async close(timeoutMs = 30_000): Promise<void> {
    await this.drain(timeoutMs);
    await this.closeDrained();
  }

  /**
   * close() in its two steps, for a submission worker: the sessions drain while the listening
   * socket keeps answering 421, until the primary says every worker has drained (node:cluster
   * would otherwise hand a new connection to a worker that is exiting).
   */
  async drain(timeoutMs = 30_000): Promise<void> {
    this.draining = true;
    await drainSessions(this.server, timeoutMs);
  }

  closeDrained(): Promise<void> {
    return closeListener(this.server);
  }

  /** SIGHUP: a renewed certificate for new sessions and a new size limit, without a restart. */
  reload(tls: TlsMaterial, maxMessageBytes: number): void {
    this.server.updateSecureContext({ key: tls.key, cert: tls.cert });
    this.server.options.size = maxMessageBytes;
    Object.assign(this.server.options, connectionOptions(this.deps.config.limits));
  }

  /** A rotated session ticket key, for new sessions; tickets under the previous key get a full handshake. */
  setTicketKeys(keys: Buffer): void {
    this.server.updateSecureContext({ ticketKeys: keys });
  }

  /** A session step that reads storage: a failure (a database fault) becomes a 4xx reply instead of crashing the listener. */
  private guard(step: Promise<SmtpReply | null>): Promise<SmtpReply | null> {
    return step.catch((err: unknown) => {
      this.deps.logger.error({ listener: this.listener.name, err }, 'session step failed');
      return internalFailureReply(err);
    });
  }

  /** onConnect: refused while draining (the connection limits were applied at accept), else the command timeout starts. */
  private admit(session: SMTPServerSession): SmtpReply | undefined {
    if (this.draining) return shuttingDown();
    this.deadlines.arm(session.id);
    return undefined;
  }

  /**
   * The reply to a failed AUTH: a storage fault is a temporary failure (RFC 4954), not a wrong
   * password; the session's own failures past limits.auth_failures_per_connection close it.
   */
  private authRefused(session: SMTPServerSession, err: unknown): SmtpReply {
    if (!(err instanceof SmtpReply)) {
      this.deps.logger.error({ listener: this.listener.name, err }, 'session step failed');
      return reply(454, '4.7.0', 'temporary authentication failure');
    }
    const failures = (this.authFailures.get(session.id) ?? 0) + 1;
    this.authFailures.set(session.id, failures);
    if (failures >= this.deps.config.limits.auth_failures_per_connection) {
      return reply(421, '4.7.0', 'too many failed logins: closing connection');
    }
    return err;
  }

  /** Ends the session's open transaction, if any, giving back what it reserved. */
  private endTransaction(sessionId: string): Transaction | undefined {
    const transaction = this.transactions.get(sessionId);
    if (!transaction) return undefined;
    this.transactions.delete(sessionId);
    this.pipeline.abandon(transaction.queueId);
    return transaction;
  }

  private async mailFrom(address: string, session: SMTPServerSession): Promise<SmtpReply | null> {
    this.deadlines.arm(session.id);
    // After RSET or a refused DATA, smtp-server starts a new transaction without telling us.
    this.endTransaction(session.id);
    const refusal = await this.pipeline.checkEnvelopeSender(credentialOf(session), address);
    if (refusal) return refusal;
    this.transactions.set(session.id, { queueId: newQueueId() });
    return null;
  }

  private async rcptTo(address: string, session: SMTPServerSession): Promise<SmtpReply | null> {
    this.deadlines.arm(session.id);
    const { queueId } = this.transactions.get(session.id)!;
    return (await this.pipeline.checkRecipient(credentialOf(session), queueId, address, session.envelope.rcptTo.length)) ?? null;
  }

  private async data(chunks: Buffer[], session: SMTPServerSession): Promise<string> {
    const { queueId } = this.transactions.get(session.id)!;
    this.transactions.delete(session.id);
    return this.pipeline.accept({
      queueId,
      credential: credentialOf(session),
      mailFrom: (session.envelope.mailFrom as { address: string }).address,
      recipients: session.envelope.rcptTo.map((r) => r.address),
      chunks,
      trace: {
        heloName: session.hostNameAppearsAs,
        clientAddress: session.remoteAddress,
        clientHostname: session.clientHostname,
        tls: session.secure,
      },
    });
  }
}

/**
 * smtp-server's own connection limits (abuse protection). The ConnectionLimiter already bounds
 * connections from accept on (accept-guard.ts); smtp-server's maxClients is only a backstop.
 */
const connectionOptions = (limits: RelayConfig['limits']) => ({
  socketTimeout: limits.idle_timeout,
  maxCommandLength: limits.max_line_length,
  maxAllowedUnauthenticatedCommands: limits.max_unauthenticated_commands,
  maxClients: limits.max_clients * 2,
});

const tooBig = (limit: number) => reply(552, '5.3.4', `message exceeds the maximum size of ${limit} bytes`);

const credentialOf = (session: SMTPServerSession) => session.user as unknown as CredentialRecord;
