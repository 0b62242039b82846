/**
 * Graceful shutdown of one listener (SIGTERM): the caller's onConnect refuses new sessions with
 * 421 4.3.2 while the socket keeps listening (a client sees a reply, not a refused connect);
 * sessions between transactions are told 421 4.3.2 and closed; a transaction in progress is
 * left to finish and its session is closed right after. Whatever is left at the deadline is
 * cut, then the listening socket closes.
 */
import type { SMTPServer } from 'smtp-server';
import { reply } from './replies.js';

export const shuttingDown = () => reply(421, '4.3.2', 'service shutting down, try again later');
const SHUTTING_DOWN = shuttingDown().message;

type Connection = SMTPServer['connections'] extends Set<infer C> ? C : never;

/** A MAIL FROM has been accepted and its transaction has not had its final reply yet. */
const inTransaction = (connection: Connection) => Boolean(connection.session?.envelope?.mailFrom);

/** Ready: greeted, not already being refused (onConnect) or closed. */
const isGreeted = (connection: Connection) => {
  const state = connection as unknown as { _ready?: boolean; _closing?: boolean; _closed?: boolean };
  return Boolean(state._ready) && !state._closing && !state._closed;
};

export async function drainListener(server: SMTPServer, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const connection of [...server.connections]) {
      // smtp-server closes the connection after sending a 421.
      if (isGreeted(connection) && !inTransaction(connection)) connection.send(421, SHUTTING_DOWN);
    }
    if (server.connections.size === 0 || Date.now() >= deadline) break;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  for (const connection of [...server.connections]) connection.send(421, SHUTTING_DOWN);
  await new Promise<void>((resolve) => server.close(() => resolve()));
}
