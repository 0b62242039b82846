/**
 * The private state of nodemailer's SMTPConnection that delivery reads, in one place.
 * nodemailer is pinned to an exact version (package.json), and test/upstream-internals.test.ts
 * checks each of these against a real SMTP server on loopback, so an upgrade that renames or
 * changes one fails there; here a missing field reads as empty. Each says which upstream option
 * would replace it.
 */
import { TLSSocket } from 'node:tls';
import type SMTPConnection from 'nodemailer/lib/smtp-connection';

interface PrivateState {
  /** Extensions recognised in the EHLO reply (SMTPUTF8, DSN, 8BITMIME, REQUIRETLS, PIPELINING, SIZE). */
  _supportedExtensions?: string[];
  /** The transaction in progress or last run: false before the first send() and after RSET. */
  _envelope?: false | { rejectedErrors?: Error[] };
}

const privateState = (connection: SMTPConnection) => connection as unknown as PrivateState;

/**
 * The extensions the server offered in its EHLO reply, as nodemailer recognised them (upper
 * case), known once connect() has called back.
 * Upstream replacement: a public list of the EHLO extensions after connect(); today the EHLO
 * lines are public only on send()'s result (`info.ehlo`), after the envelope has gone out, too
 * late to leave out recipients that the server cannot take.
 */
export function offeredExtensions(connection: SMTPConnection): readonly string[] {
  return privateState(connection)._supportedExtensions ?? [];
}

/**
 * The RCPT TO refusals of the connection's last transaction, each with its `recipient`.
 * nodemailer attaches them to a successful result and to the "all recipients were rejected"
 * error, but not to a failure at DATA or after the message, so they are read from its envelope.
 * Upstream replacement: `rejectedErrors` on every error that send() reports after RCPT TO.
 */
export function rcptRefusals(connection: SMTPConnection): Error[] {
  const envelope = privateState(connection)._envelope;
  return (envelope && envelope.rejectedErrors) || [];
}

/**
 * The TLS socket of a session that upgraded with STARTTLS, for its protocol, cipher and the
 * server's certificate chain; undefined in cleartext.
 * Upstream replacement: a public accessor for the socket (or its peer certificate) after connect().
 */
export function tlsSocketOf(connection: SMTPConnection): TLSSocket | undefined {
  const socket = (connection as unknown as { _socket?: unknown })._socket;
  return connection.secure && socket instanceof TLSSocket ? socket : undefined;
}
