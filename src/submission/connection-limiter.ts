/**
 * Connection limits over all listeners: at most limits.max_clients sessions at once and
 * limits.max_clients_per_ip from one client address; past either the session is refused at
 * connect with 421 4.7.0.
 */
import type { RelayConfig } from '../config/schema.js';
import { reply, type SmtpReply } from './replies.js';

export class ConnectionLimiter {
  private total = 0;
  private readonly perIp = new Map<string, number>();
  /** Admitted session id → its client address, so only admitted sessions are released. */
  private readonly admitted = new Map<string, string>();

  constructor(private readonly config: RelayConfig) {}

  /** Undefined when the session may proceed (and now counts), else the refusal. */
  admit(sessionId: string, ip: string): SmtpReply | undefined {
    const { max_clients, max_clients_per_ip } = this.config.limits;
    if (this.total >= max_clients) return reply(421, '4.7.0', 'too many connections: try again in a moment');
    const fromIp = this.perIp.get(ip) ?? 0;
    if (fromIp >= max_clients_per_ip) {
      return reply(421, '4.7.0', `too many connections from ${ip} (at most ${max_clients_per_ip}): try again in a moment`);
    }
    this.total++;
    this.perIp.set(ip, fromIp + 1);
    this.admitted.set(sessionId, ip);
    return undefined;
  }

  release(sessionId: string): void {
    const ip = this.admitted.get(sessionId);
    if (ip === undefined) return;
    this.admitted.delete(sessionId);
    this.total--;
    const left = (this.perIp.get(ip) ?? 1) - 1;
    if (left > 0) this.perIp.set(ip, left);
    else this.perIp.delete(ip);
  }
}
