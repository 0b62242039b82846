/**
 * The submission listeners (Postfix's "smtpd"): implicit TLS or STARTTLS, AUTH PLAIN/LOGIN,
 * sender policy at MAIL FROM and on the header From, suppression and recipient limits at
 * RCPT TO, then cleanup, DKIM signing and a durable enqueue before the 250.
 */
import type { AddressInfo } from 'node:net';
import { SMTPServer, type SMTPServerSession } from 'smtp-server';
import type { RelayConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import { newQueueId } from '../queue/ids.js';
import type { CredentialRecord, Store } from '../queue/store.js';
import type { DkimSigner } from '../signing/dkim.js';
import { Authenticator } from './auth.js';
import { prepareMessage } from './message.js';
import { checkSender, domainOfAddress } from './policy.js';
import { reply, SmtpReply, useExactEnhancedCodes } from './replies.js';
import type { TlsMaterial } from './tls.js';

type Listener = RelayConfig['listeners'][number];

export interface SubmissionDeps {
  config: RelayConfig;
  store: Store;
  signer: DkimSigner;
  logger: Logger;
  tls: TlsMaterial;
  /** Called after each commit so delivery starts without waiting for its next poll. */
  onQueued: () => void;
}

/** Per-transaction state, keyed by session id (smtp-server resets the envelope itself). */
interface Transaction {
  queueId: string;
}

export class SubmissionServer {
  readonly server: SMTPServer;
  private readonly transactions = new Map<string, Transaction>();
  private readonly auth: Authenticator;

  constructor(
    readonly listener: Listener,
    private readonly deps: SubmissionDeps,
  ) {
    useExactEnhancedCodes();
    this.auth = new Authenticator(deps.store);
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
    const credential = session.user as unknown as CredentialRecord;
    if (address === '') return reply(550, '5.7.1', 'null reverse-path is not accepted for submission');
    const refusal = checkSender(this.deps.store, credential, address, 'envelope sender');
    if (refusal) return refusal;
    this.transactions.set(session.id, { queueId: newQueueId() });
    return null;
  }

  private rcptTo(address: string, session: SMTPServerSession): SmtpReply | null {
    const { store, config, logger } = this.deps;
    const transaction = this.transactions.get(session.id)!;
    const max = config.limits.max_recipients;
    if (session.envelope.rcptTo.length >= max) return reply(452, '4.5.3', `too many recipients (at most ${max} per message)`);
    if (!/^[^@\s]+@[^@\s]+$/.test(address)) {
      return reply(501, '5.1.3', `bad recipient address syntax: <${address}>`);
    }
    if (store.isSuppressed(address)) {
      const refusal = reply(550, '5.1.1', `recipient <${address}> is on the suppression list`);
      store
        .recordEvent({
          queue_id: transaction.queueId,
          message_id: '',
          recipient: address,
          status: 'suppressed',
          smtp_code: 550,
          response: `550 ${refusal.message}`,
          category: 'suppressed',
        })
        .catch((err) => logger.error({ err }, 'could not record suppressed event'));
      logger.info({ queueId: transaction.queueId, recipientDomain: domainOfAddress(address), status: 'suppressed' }, 'recipient suppressed');
      return refusal;
    }
    return null;
  }

  /** Cleanup, policy on the header, signing and the durable enqueue; resolves to the queue id. */
  private async data(raw: Buffer, session: SMTPServerSession): Promise<string> {
    const { store, config, signer, logger } = this.deps;
    const credential = session.user as unknown as CredentialRecord;
    const { queueId } = this.transactions.get(session.id)!;
    this.transactions.delete(session.id);
    try {
      const prepared = prepareMessage(raw, {
        queueId,
        hostname: config.hostname,
        heloName: session.hostNameAppearsAs,
        clientAddress: session.remoteAddress,
        clientHostname: session.clientHostname,
        tls: session.secure,
      });
      for (const address of prepared.from) {
        const refusal = checkSender(store, credential, address, 'header From');
        if (refusal) throw refusal;
      }
      if (prepared.sender) {
        const refusal = checkSender(store, credential, prepared.sender, 'header Sender');
        if (refusal) throw refusal;
      }
      const signingDomain = store.getDomain(domainOfAddress(prepared.from[0]!))!;
      const signed = signer.sign(prepared.bytes, {
        domain: signingDomain.name,
        selector: signingDomain.selector,
        algorithm: signingDomain.algorithm,
        privateKeyPem: signingDomain.privateKeyPem,
      });
      const now = Date.now();
      const recipients = session.envelope.rcptTo.map((r) => r.address);
      await store.enqueue({
        queueId,
        messageId: prepared.messageId,
        credential: credential.name,
        mailFrom: (session.envelope.mailFrom as { address: string }).address,
        recipients,
        body: signed,
        receivedAt: now,
        expiresAt: now + config.delivery.max_queue_age,
      });
      for (const domain of new Set(recipients.map(domainOfAddress))) {
        logger.info({ queueId, credential: credential.name, recipientDomain: domain, status: 'queued', size: signed.length }, 'message queued');
      }
      this.deps.onQueued();
      return queueId;
    } catch (err) {
      if (err instanceof SmtpReply) {
        logger.info({ queueId, credential: credential.name, refused: err.message }, 'message refused');
        throw err;
      }
      logger.error({ queueId, err }, 'could not queue message');
      throw reply(451, '4.3.0', 'temporary local problem, message not queued: try again later');
    }
  }
}

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
