/**
 * TLS session resumption by tickets: a client that comes back within the ticket's lifetime
 * skips the certificate signature and key exchange of a full handshake, which is most of what a
 * new connection costs. The key that encrypts the tickets is random, kept in memory only, and
 * replaced every ROTATE_MS, so a key that leaks opens at most that long of resumed sessions;
 * a ticket issued under the previous key just leads to a full handshake. With submission
 * workers, the primary owns the key and hands each new one to every worker, so a client may
 * resume on any of them.
 */
import { randomBytes } from 'node:crypto';

/** How long one ticket key is used; also the tickets' lifetime (sessionTimeout, in seconds). */
export const ROTATE_MS = 60 * 60_000;
export const SESSION_TIMEOUT_S = ROTATE_MS / 1000;

/** node:tls takes 48 bytes: a 16-byte key name, a 16-byte HMAC secret and a 16-byte AES key. */
export const newTicketKeys = () => randomBytes(48);

export class SessionTicketKeys {
  private keys = newTicketKeys();
  private timer: NodeJS.Timeout | undefined;

  /** `onRotate` is told each new key (not the first, which `current` gives). */
  constructor(
    private readonly onRotate: (keys: Buffer) => void,
    private readonly rotateMs = ROTATE_MS,
  ) {}

  get current(): Buffer {
    return this.keys;
  }

  start(): void {
    this.timer = setInterval(() => {
      this.keys = newTicketKeys();
      this.onRotate(this.keys);
    }, this.rotateMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
