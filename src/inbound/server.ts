/**
 * The inbound listener (a `listeners` entry with `kind: inbound`, port 25): where the receiving
 * side's mail comes back. It offers STARTTLS and no AUTH, and takes mail only for the return-path
 * domain's b+TOKEN (bounces) and u+TOKEN (unsubscribes) addresses and the configured feedback
 * addresses; every other recipient is refused 550 5.7.1, so it is never an open relay. Its own
 * size limit and a per-IP message rate apply. What it takes is handed to the feedback stage;
 * the reply after DATA waits for that, so a storage fault is a 451 the sender retries.
 */
import { SMTPServer } from 'smtp-server';
import { listenSmtp } from '../bind-error.js';
import type { RelayConfig } from '../config/schema.js';
import { domainOf, localPartOf, normaliseAddress } from '../envelope/address.js';
import type { FeedbackProcessor } from '../feedback/apply.js';
import type { Logger } from '../log.js';
import { guardAccept, type AcceptedConnections } from '../submission/accept-guard.js';
import type { ConnectionLimiter } from '../submission/connection-limiter.js';
import { drainListener, shuttingDown } from '../submission/drain.js';
import { readDataWithin } from '../submission/data-within.js';
import { internalFailureReply } from '../submission/faults.js';
import { reply, useExactEnhancedCodes, type SmtpReply } from '../submission/replies.js';
import type { TlsMaterial } from '../submission/tls.js';

type Listener = RelayConfig['listeners'][number];

/** Recipients of one inbound message: reports come to one address, a few at most. */
const MAX_RECIPIENTS = 20;
const MINUTE_MS = 60_000;

export interface InboundDeps {
  config: RelayConfig;
  logger: Logger;
  tls: TlsMaterial;
  processor: FeedbackProcessor;
  connections: ConnectionLimiter;
}

export class InboundServer {
  readonly server: SMTPServer;
  private readonly accepted: AcceptedConnections;
  /** Times of the messages each IP sent in the last minute. */
  private readonly recent = new Map<string, number[]>();
  private draining = false;

  constructor(
    readonly listener: Listener,
    private readonly deps: InboundDeps,
  ) {
    useExactEnhancedCodes();
    const { config, tls } = deps;
    const limits = config.limits;
    this.server = new SMTPServer({
      name: config.hostname,
      banner: 'Relay ESMTP feedback',
      secure: false,
      key: tls.key,
      cert: tls.cert,
      minVersion: 'TLSv1.2',
      size: config.bounces.inbound.max_message_bytes,
      rejectOversized: true,
      hideENHANCEDSTATUSCODES: false,
      hideDSN: true,
      disabledCommands: ['AUTH'],
      authOptional: true,
      logger: false,
      socketTimeout: limits.idle_timeout,
      maxCommandLength: limits.max_line_length,
      maxClients: limits.max_clients * 2,
      onConnect: (_session, callback) => callback(this.draining ? shuttingDown() : undefined),
      onMailFrom: (_address, session, callback) => callback(this.overRate(session.remoteAddress) ?? null),
      onRcptTo: (address, session, callback) => {
        if (session.envelope.rcptTo.length >= MAX_RECIPIENTS) return callback(reply(452, '4.5.3', 'too many recipients'));
        callback(
          this.accepts(address.address) ? null : reply(550, '5.7.1', `relay access denied: <${address.address}> is not handled here`),
        );
      },
      onData: (stream, session, callback) => {
        const limit = this.server.options.size!;
        // Past the limit smtp-server answers 552 5.3.4 at the end.
        readDataWithin(stream, limit, (chunks, size) => {
          if (stream.sizeExceeded || size > limit)
            return callback(stream.sizeExceeded ? null : reply(552, '5.3.4', `message exceeds the maximum size of ${limit} bytes`));
          const recipients = session.envelope.rcptTo.map((r) => r.address);
          deps.processor.process({ recipients, raw: Buffer.concat(chunks), remoteAddress: session.remoteAddress }).then(
            () => callback(null, '2.0.0 Ok: report received'),
            (err: unknown) => {
              deps.logger.error({ listener: listener.name, err }, 'could not process inbound report');
              callback(internalFailureReply(err));
            },
          );
        });
      },
      onClose: (session) => this.accepted.sessionClosed(session),
    });
    this.accepted = guardAccept(this.server, {
      listener: listener.name,
      implicitTls: false,
      connections: deps.connections,
      handshakeTimeoutMs: () => limits.tls_handshake_timeout,
      logger: deps.logger,
    });
  }

  listen(): Promise<number> {
    return listenSmtp(this.server, this.listener, this.deps.logger);
  }

  close(timeoutMs = 30_000): Promise<void> {
    this.draining = true;
    return drainListener(this.server, timeoutMs);
  }

  reload(tls: TlsMaterial): void {
    this.server.updateSecureContext({ key: tls.key, cert: tls.cert });
    this.server.options.size = this.deps.config.bounces.inbound.max_message_bytes;
  }

  /** Only the return-path domain's token addresses and the feedback addresses. */
  private accepts(address: string): boolean {
    const { return_path_domain: domain, feedback_addresses: feedback } = this.deps.config.bounces;
    const normal = normaliseAddress(address);
    if (feedback.includes(normal)) return true;
    return domain !== undefined && domainOf(normal) === domain && /^[bu]\+[0-9a-z-]+$/.test(localPartOf(normal));
  }

  private overRate(ip: string): SmtpReply | undefined {
    const now = Date.now();
    const times = (this.recent.get(ip) ?? []).filter((t) => t > now - MINUTE_MS);
    if (times.length >= this.deps.config.bounces.inbound.messages_per_ip_per_minute) {
      this.recent.set(ip, times);
      return reply(450, '4.7.1', 'too many messages from your address: try again later');
    }
    times.push(now);
    this.recent.set(ip, times);
    if (this.recent.size > 10_000)
      for (const [key, list] of this.recent) if (list.every((t) => t <= now - MINUTE_MS)) this.recent.delete(key);
    return undefined;
  }
}
