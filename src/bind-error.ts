import type { AddressInfo } from 'node:net';
import type { SMTPServer } from 'smtp-server';
import type { Logger } from './log.js';

/** A listener that cannot bind, as one line naming the listener, its address and what to do. */
export function bindError(err: NodeJS.ErrnoException, listener: { name: string; host: string; port: number }): Error {
  const where = `${listener.host}:${listener.port} (listener "${listener.name}")`;
  let message = `cannot listen on ${where}: ${err.code ?? err.message}`;
  if (err.code === 'EACCES') {
    message =
      `cannot listen on ${where}: permission denied. Ports below 1024 need root or the bind capability: ` +
      `run "sudo setcap cap_net_bind_service=+ep $(command -v node)", or set another port for "${listener.name}" in the config.`;
  } else if (err.code === 'EADDRINUSE') {
    message = `cannot listen on ${where}: the address is already in use (is another relay or MTA running?). Stop it or set another port for "${listener.name}" in the config.`;
  } else if (err.code === 'EADDRNOTAVAIL') {
    message = `cannot listen on ${where}: no such address on this machine. Set "host" of "${listener.name}" in the config to one of its addresses (or 0.0.0.0).`;
  }
  return Object.assign(new Error(message), { code: err.code });
}

/** Listens on the listener's address: a bind failure rejects with bindError, later errors are logged. Resolves with the bound port. */
export function listenSmtp(server: SMTPServer, listener: { name: string; host: string; port: number }, logger: Logger): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => reject(bindError(err, listener));
    server.once('error', onError);
    server.listen(listener.port, listener.host, () => {
      server.off('error', onError);
      server.on('error', (err) => logger.error({ listener: listener.name, err }, 'listener error'));
      resolve((server.server.address() as AddressInfo).port);
    });
  });
}
