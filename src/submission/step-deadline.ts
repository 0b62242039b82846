/**
 * The command timeout: each step of a session (greeting to AUTH, AUTH to MAIL, each RCPT, a whole
 * message after DATA) must complete within limits.command_timeout of the previous one. The idle
 * timeout (smtp-server's socketTimeout) is reset by every byte, so without this a client
 * trickling one byte at a time could hold a connection slot forever.
 */
import type { SMTPServer } from 'smtp-server';
import { reply } from './replies.js';
import { closeWith421 } from './smtp-server-internals.js';

export class StepDeadlines {
  private readonly timers = new Map<string, NodeJS.Timeout>();

  constructor(
    private readonly server: SMTPServer,
    private readonly timeoutMs: () => number,
  ) {}

  /** (Re)starts the session's clock for its next step. */
  arm(sessionId: string): void {
    this.clear(sessionId);
    const timer = setTimeout(() => this.expire(sessionId), this.timeoutMs());
    timer.unref();
    this.timers.set(sessionId, timer);
  }

  /** Stops the clock while Relay itself is working on the client's step. */
  clear(sessionId: string): void {
    clearTimeout(this.timers.get(sessionId));
    this.timers.delete(sessionId);
  }

  private expire(sessionId: string): void {
    this.timers.delete(sessionId);
    for (const connection of this.server.connections) {
      if (connection.id === sessionId) closeWith421(connection, reply(421, '4.4.2', 'command timeout: closing connection').message);
    }
  }
}
