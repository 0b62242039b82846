/**
 * Graceful shutdown of one listener (SIGTERM): the caller's onConnect refuses new sessions with
 * 421 4.3.2 while the socket keeps listening (a client sees a reply, not a refused connect);
 * sessions between transactions are told 421 4.3.2 and closed; a transaction in progress is
 * left to finish and its session is closed right after. Whatever is left at the deadline is
 * cut, then the listening socket closes.
 */
import type { SMTPServer } from 'smtp-server';
import { reply } from './replies.js';
import { closeWith421, isGreeted, type ServerConnection } from './smtp-server-internals.js';

export const shuttingDown = () => reply(421, '4.3.2', 'service shutting down, try again later');
const SHUTTING_DOWN = shuttingDown().message;

/** A MAIL FROM has been accepted and its transaction has not had its final reply yet. */
const inTransaction = (connection: ServerConnection) => Boolean(connection.session?.envelope?.mailFrom);

export async function drainListener(server: SMTPServer, timeoutMs: number): Promise<void> {
  await drainSessions(server, timeoutMs);
  await closeListener(server);
}

/** Waits up to timeoutMs for the transactions in progress, closing each session as it comes between transactions. */
export async function drainSessions(server: SMTPServer, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const connection of [...server.connections]) {
      if (isGreeted(connection) && !inTransaction(connection)) closeWith421(connection, SHUTTING_DOWN);
    }
    if (server.connections.size === 0 || Date.now() >= deadline) break;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** Cuts whatever sessions are left and closes the listening socket. */
export async function closeListener(server: SMTPServer): Promise<void> {
  for (const connection of [...server.connections]) closeWith421(connection, SHUTTING_DOWN);
  await new Promise<void>((resolve) => server.close(() => resolve()));
}
