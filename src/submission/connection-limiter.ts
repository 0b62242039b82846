/**
 * Connection limits over all listeners, counted from TCP accept (before any TLS handshake) to
 * close: at most limits.max_clients connections at once and limits.max_clients_per_ip from one
 * client address. A connection that does not yet hold a session still holds a descriptor and
 * a handshake slot, so it counts.
 */
import type { RelayConfig } from '../config/schema.js';
import { reply, type SmtpReply } from './replies.js';

export class ConnectionLimiter {
  private total = 0;
  private readonly perIp = new Map<string, number>();

  /**
   * `share`: the number of submission workers the listeners' connections are spread over, round
   * robin; each holds its share of the limits, so that together they hold about the limits.
   */
  constructor(
    private readonly config: RelayConfig,
    private readonly share = 1,
  ) {}

  /** A release function when the connection may proceed (and now counts), else the refusal. */
  admit(ip: string): { release: () => void } | { refusal: SmtpReply } {
    const max_clients = Math.ceil(this.config.limits.max_clients / this.share);
    const max_clients_per_ip = Math.ceil(this.config.limits.max_clients_per_ip / this.share);
    if (this.total >= max_clients) return { refusal: reply(421, '4.7.0', 'too many connections: try again in a moment') };
    const fromIp = this.perIp.get(ip) ?? 0;
    if (fromIp >= max_clients_per_ip) {
      return {
        refusal: reply(
          421,
          '4.7.0',
          `too many connections from ${ip} (at most ${this.config.limits.max_clients_per_ip}): try again in a moment`,
        ),
      };
    }
    this.total++;
    this.perIp.set(ip, fromIp + 1);
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.total--;
        const left = (this.perIp.get(ip) ?? 1) - 1;
        if (left > 0) this.perIp.set(ip, left);
        else this.perIp.delete(ip);
      },
    };
  }
}
