/**
 * What happens to a TCP connection before smtp-server sees it: it is counted against the
 * connection limits from accept to close (connection-limiter.ts), and on an implicit-TLS
 * listener its handshake must finish within limits.tls_handshake_timeout. Without this a
 * client could open sockets that never start the handshake and hold every slot for the idle
 * timeout, outside any per-IP limit.
 */
import type { Socket } from 'node:net';
import type { SMTPServer } from 'smtp-server';
import type { Logger } from '../log.js';
import type { ConnectionLimiter } from './connection-limiter.js';

export interface AcceptGuardOptions {
  listener: string;
  implicitTls: boolean;
  connections: ConnectionLimiter;
  handshakeTimeoutMs: () => number;
  logger: Logger;
}

/**
 * smtp-server keeps each accepted socket that has not reached its session yet (implicit TLS
 * handshake in progress) in this map, raw socket → the topmost socket (the TLSSocket once the
 * handshake started). A TLS wrap must be destroyed from the top: tearing it down from below in
 * the middle of a handshake crashes Node.
 */
type PendingSockets = Map<Socket, Socket>;

/** Lets a session's end give back its connection's slot. */
export interface AcceptedConnections {
  sessionClosed(session: { remoteAddress: string; remotePort: number }): void;
}

export function guardAccept(smtp: SMTPServer, options: AcceptGuardOptions): AcceptedConnections {
  // STARTTLS (and implicit TLS) moves the socket's handle into a TLSSocket, after which the
  // accepted socket never emits 'close': the session's end releases the slot then.
  const releases = new Map<string, () => void>();
  const key = (address: string | undefined, port: number | undefined) => `${address}|${port}`;
  const server = smtp.server;
  const handlers = server.listeners('connection') as ((socket: Socket) => void)[];
  server.removeAllListeners('connection');
  server.on('connection', (socket: Socket) => {
    const ip = socket.remoteAddress;
    const admitted = ip === undefined ? undefined : options.connections.admit(ip);
    if (!admitted || 'refusal' in admitted) {
      if (admitted)
        options.logger.warn({ listener: options.listener, remote: ip, refused: admitted.refusal.message }, 'connection refused');
      socket.on('error', () => {});
      // Before an implicit-TLS handshake nothing can be said; a plain listener can say why.
      if (options.implicitTls || !admitted) socket.destroy();
      else socket.end(`421 ${admitted.refusal.message}\r\n`, () => socket.destroy());
      return;
    }
    const connection = key(ip, socket.remotePort);
    const release = () => {
      admitted.release();
      releases.delete(connection);
    };
    releases.set(connection, release);
    socket.once('close', release);
    if (options.implicitTls) {
      const timer = setTimeout(() => {
        const pending = (smtp as unknown as { _pendingSockets?: PendingSockets })._pendingSockets?.get(socket);
        if (!pending) return;
        options.logger.info({ listener: options.listener, remote: ip }, 'TLS handshake not completed in time: connection closed');
        pending.destroy();
      }, options.handshakeTimeoutMs());
      timer.unref();
      socket.once('close', () => clearTimeout(timer));
    }
    for (const handler of handlers) handler.call(server, socket);
  });
  return {
    sessionClosed: (session) => releases.get(key(session.remoteAddress, session.remotePort))?.(),
  };
}
