/**
 * The submission listeners (Postfix's "smtpd"): implicit TLS or STARTTLS and AUTH PLAIN/LOGIN,
 * then each SMTP step handed to the acceptance pipeline (sender policy at MAIL FROM, recipient
 * checks at RCPT TO, cleanup, signing and the durable enqueue at the end of DATA).
 */
import type { AddressInfo } from 'node:net';
import { SMTPServer, type SMTPServerSession } from 'smtp-server';
import type { RelayConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import { newQueueId } from '../queue/ids.js';
import type { CredentialRecord, Store } from '../queue/store.js';
import { Authenticator } from './auth.js';
import type { SubmissionPipeline } from './pipeline.js';
import { reply, type SmtpReply, useExactEnhancedCodes } from './replies.js';
import type { TlsMaterial } from './tls.js';

type Listener = RelayConfig['listeners'][number];

export interface SubmissionDeps {
  config: RelayConfig;
  store: Store;
  logger: Logger;
  tls: TlsMaterial;
  pipeline: SubmissionPipeline;
}

/** Per-transaction state, keyed by session id (smtp-server resets the envelope itself). */
interface Transaction {
  queueId: string;
}

export class SubmissionServer {
  readonly server: SMTPServer;
  private readonly transactions = new Map<string, Transaction>();
  private readonly auth: Authenticator;
  private readonly pipeline: SubmissionPipeline;

  constructor(
    readonly listener: Listener,
    private readonly deps: SubmissionDeps,
  ) {
    useExactEnhancedCodes();
    this.auth = new Authenticator(deps.store);
    this.pipeline = deps.pipeline;
    const { config, tls } = deps;
    this.server = new SMTPServer({
      name: config.hostname,
      banner: 'Relay ESMTP submission',
      secure: listener.tls === 'implicit',
      key: tls.key,
      cert: tls.cert,
      minVersion: 'TLSv1.2',
      size: config.limits.max_message_bytes,
      rejectOversized: true,
      hideENHANCEDSTATUSCODES: false,
      hideDSN: true,
      authMethods: ['PLAIN', 'LOGIN'],
      authRequiredMessage: '5.7.0 Authentication required',
      logger: false,
      onAuth: (auth, session, callback) => {
        const credential = this.auth.authenticate(auth.username ?? '', auth.password ?? '');
        if (!credential) {
          deps.logger.warn({ listener: listener.name, remote: session.remoteAddress }, 'authentication failed');
          return callback(reply(535, '5.7.8', 'Authentication credentials invalid'));
        }
        callback(null, { user: credential });
      },
      onMailFrom: (address, session, callback) => callback(this.mailFrom(address.address, session)),
      onRcptTo: (address, session, callback) => callback(this.rcptTo(address.address, session)),
      onData: (stream, session, callback) => {
        const chunks: Buffer[] = [];
        stream.on('data', (chunk: Buffer) => chunks.push(chunk));
        stream.on('end', () => {
          // smtp-server answers 552 itself for an oversized message (rejectOversized).
          if (stream.sizeExceeded) return callback();
          this.data(Buffer.concat(chunks), session).then(
            (queueId) => callback(null, `2.0.0 Ok: queued as ${queueId}`),
            (err: Error) => callback(err),
          );
        });
      },
      onClose: (session) => this.transactions.delete(session.id),
    });
  }

  listen(): Promise<number> {
    const { name, host, port } = this.listener;
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => reject(bindError(err, this.listener));
      this.server.once('error', onError);
      this.server.listen(port, host, () => {
        this.server.off('error', onError);
        this.server.on('error', (err) => this.deps.logger.error({ listener: name, err }, 'listener error'));
        resolve((this.server.server.address() as AddressInfo).port);
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private mailFrom(address: string, session: SMTPServerSession): SmtpReply | null {
    const refusal = this.pipeline.checkEnvelopeSender(credentialOf(session), address);
    if (refusal) return refusal;
    this.transactions.set(session.id, { queueId: newQueueId() });
    return null;
  }

  private rcptTo(address: string, session: SMTPServerSession): SmtpReply | null {
    const { queueId } = this.transactions.get(session.id)!;
    return this.pipeline.checkRecipient(queueId, address, session.envelope.rcptTo.length) ?? null;
  }

  private async data(raw: Buffer, session: SMTPServerSession): Promise<string> {
    const { queueId } = this.transactions.get(session.id)!;
    this.transactions.delete(session.id);
    await this.pipeline.accept({
      queueId,
      credential: credentialOf(session),
      mailFrom: (session.envelope.mailFrom as { address: string }).address,
      recipients: session.envelope.rcptTo.map((r) => r.address),
      raw,
      trace: {
        heloName: session.hostNameAppearsAs,
        clientAddress: session.remoteAddress,
        clientHostname: session.clientHostname,
        tls: session.secure,
      },
    });
    return queueId;
  }
}

const credentialOf = (session: SMTPServerSession) => session.user as unknown as CredentialRecord;

function bindError(err: NodeJS.ErrnoException, listener: Listener): Error {
  const where = `${listener.host}:${listener.port} (listener "${listener.name}")`;
  let message = `cannot listen on ${where}: ${err.code ?? err.message}`;
  if (err.code === 'EACCES') {
    message =
      `cannot listen on ${where}: permission denied. Ports below 1024 need root or the bind capability: ` +
      `run "sudo setcap cap_net_bind_service=+ep $(command -v node)", or set another port for "${listener.name}" in the config.`;
  } else if (err.code === 'EADDRINUSE') {
    message = `cannot listen on ${where}: the address is already in use (is another relay or MTA running?). Stop it or set another port for "${listener.name}" in the config.`;
  }
  return Object.assign(new Error(message), { code: err.code });
}
