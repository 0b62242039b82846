/**
 * The parts of smtp-server that the submission listeners use beyond its documented options and
 * handlers, in one place. smtp-server is pinned to an exact version (package.json), and
 * test/upstream-internals.test.ts checks each of these against a real server on loopback, so an
 * upgrade that changes one fails there. Each says which upstream option would replace it.
 */
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import type { SMTPServer } from 'smtp-server';
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';

/** One client session as smtp-server keeps it (the members of `server.connections`). */
export type ServerConnection = SMTPServer['connections'] extends Set<infer C> ? C : never;

/**
 * Greeted (past onConnect and, for implicit TLS, the handshake) and not already closing or
 * closed, read from the private `_ready`, `_closing` and `_closed`. A connection still in
 * onConnect must not be sent a reply before its greeting.
 * Upstream replacement: a public session state on the connection (or a server method that ends
 * the idle sessions with a reply).
 */
export function isGreeted(connection: ServerConnection): boolean {
  const state = connection as unknown as { _ready?: boolean; _closing?: boolean; _closed?: boolean };
  return Boolean(state._ready) && !state._closing && !state._closed;
}

/**
 * Sends a 421 reply and closes the session: smtp-server's SMTPConnection#send closes the
 * connection itself after any 421 (and still closes it when the reply cannot be written).
 * Upstream replacement: a public way to end one session with a reply, such as a per-command
 * timeout option (for the command timeout) or a close() that refuses idle sessions at once
 * while it keeps greeting new ones with 421 (for the drain).
 */
export function closeWith421(connection: ServerConnection, text: string): void {
  connection.send(421, text);
}

const ENHANCED_CODE = /^[245]\.\d{1,3}\.\d{1,3} /;

let patched = false;

/**
 * Patches SMTPConnection#send (process-wide, once). smtp-server prefixes every application
 * error with a default enhanced code for its reply code (550 always becomes 5.1.1), so a
 * refusal for policy (5.7.1) would read "550 5.1.1 5.7.1 ...". With the patch a reply whose
 * text already starts with an enhanced code goes out as written (send's `context` false means
 * "no enhanced code"), and smtp-server's non-standard 538 (AUTH before STARTTLS) becomes the
 * standard 530 5.7.0.
 * Upstream replacement: an `enhancedCode` on the errors that handlers return (or honouring a
 * code already at the start of the text), and 530 for AUTH before STARTTLS.
 */
export function useExactEnhancedCodes(): void {
  if (patched) return;
  patched = true;
  const send = SMTPConnection.prototype.send;
  SMTPConnection.prototype.send = function (code, data, context) {
    if (code === 538) return send.call(this, 530, '5.7.0 Must issue a STARTTLS command first', false);
    if (typeof data === 'string' && ENHANCED_CODE.test(data)) return send.call(this, code, data, false);
    return send.call(this, code, data, context);
  };
}

/** A server option of ours (not smtp-server's) read by the patched SMTPConnection#init below. */
const GREET_AT_ONCE = 'relayGreetAtOnce';

let initPatched = false;

/**
 * Makes `server` greet as soon as a connection (and, for implicit TLS, its handshake) is up,
 * through a patch of SMTPConnection#init (process-wide, once) that honours a flag on the server.
 * smtp-server otherwise holds every greeting for 100 ms to catch early talkers, a port 25
 * defence that on a submission port, where AUTH decides, only adds 100 ms to each new
 * connection: the most of what a connection-per-message client waits for. What init did else
 * (the listeners, the maxClients backstop) is kept.
 * Upstream replacement: an option for the early-talker delay.
 */
export function greetAtOnce(server: SMTPServer): void {
  (server.options as unknown as Record<string, unknown>)[GREET_AT_ONCE] = true;
  if (initPatched) return;
  initPatched = true;
  const init = SMTPConnection.prototype.init;
  SMTPConnection.prototype.init = function (this: SMTPConnection) {
    const connection = this as unknown as {
      _server: { options: Record<string, unknown>; connections: Set<unknown> };
      _setListeners(callback: () => void): void;
      connectionReady(): void;
      name: string;
    };
    const { options, connections } = connection._server;
    if (!options[GREET_AT_ONCE]) return init.call(this);
    connection._setListeners(() => {
      const maxClients = options.maxClients as number | undefined;
      if (maxClients && connections.size > maxClients) {
        return this.send(421, `${connection.name} Too many connected clients, try again in a moment`, false);
      }
      connection.connectionReady();
    });
  };
}

/** A server option of ours (not smtp-server's) read by the patched SMTPConnection#send below. */
const COALESCE_REPLIES = 'relayCoalesceReplies';

let coalescePatched = false;

/**
 * Makes `server` write the replies one turn of the event loop produces as one TLS record and one
 * write, through a patch of SMTPConnection#send (process-wide, once) that honours a flag on the
 * server: the first reply of a turn corks the TLS socket and a setImmediate uncorks it. A
 * pipelining client's MAIL, RCPT and DATA (RFC 2920) are answered in one turn, so their three
 * replies cost one encryption and one system call instead of three, which on loopback is most of
 * what a reply costs. Nothing waits for more input: the replies leave at the end of the turn
 * that wrote them, as RFC 2920 section 3.1 asks. Cleartext sockets are left alone, so the 220 to
 * STARTTLS is on the wire before the handshake takes the socket over, and close() ends the
 * socket with end(), which flushes what is corked.
 * Upstream replacement: smtp-server batching the replies to pipelined commands itself.
 */
export function coalesceReplies(server: SMTPServer): void {
  (server.options as unknown as Record<string, unknown>)[COALESCE_REPLIES] = true;
  if (coalescePatched) return;
  coalescePatched = true;
  const send = SMTPConnection.prototype.send;
  SMTPConnection.prototype.send = function (code, data, context) {
    const connection = this as unknown as { _server: { options: Record<string, unknown> }; _socket?: Socket };
    const socket = connection._socket;
    if (connection._server.options[COALESCE_REPLIES] && socket instanceof TLSSocket && socket.writableCorked === 0) {
      socket.cork();
      setImmediate(() => socket.uncork());
    }
    return send.call(this, code, data, context);
  };
}
