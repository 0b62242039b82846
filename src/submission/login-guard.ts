/**
 * AUTH brute-force protection shared by every door: failures are counted per client IP and per
 * username; past limits.auth_failures_per_ip / _per_user within limits.auth_failure_window, every
 * login from that IP or for that username is refused with 454 4.7.0 for limits.auth_lockout,
 * right password or not, so a locked-out attacker learns nothing. Successful logins are not slowed.
 */
import type { RelayConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { CredentialRecord, Store } from '../queue/store.js';
import { Authenticator } from './auth.js';
import { FailureCounter } from './failure-counter.js';
import { reply } from './replies.js';

export class LoginGuard {
  private readonly authenticator: Authenticator;
  private readonly byIp: FailureCounter;
  private readonly byUser: FailureCounter;

  constructor(
    store: Store,
    config: RelayConfig,
    private readonly logger: Logger,
  ) {
    this.authenticator = new Authenticator(store);
    const limits = (limit: 'auth_failures_per_ip' | 'auth_failures_per_user') => () => ({
      limit: config.limits[limit],
      windowMs: config.limits.auth_failure_window,
      lockoutMs: config.limits.auth_lockout,
    });
    this.byIp = new FailureCounter(limits('auth_failures_per_ip'));
    this.byUser = new FailureCounter(limits('auth_failures_per_user'));
  }

  /** The credential, or throws 535 5.7.8 (wrong login) or 454 4.7.0 (cooling off). */
  async authenticate(username: string, password: string, remoteAddress: string): Promise<CredentialRecord> {
    const userKey = username.toLowerCase();
    if (this.byIp.isLocked(remoteAddress) || this.byUser.isLocked(userKey)) {
      this.logger.warn({ remote: remoteAddress }, 'authentication refused: too many recent failures');
      throw reply(454, '4.7.0', 'too many failed logins: try again later');
    }
    const credential = await this.authenticator.authenticate(username, password);
    if (!credential) {
      this.byIp.fail(remoteAddress);
      this.byUser.fail(userKey);
      this.logger.warn({ remote: remoteAddress }, 'authentication failed');
      throw reply(535, '5.7.8', 'Authentication credentials invalid');
    }
    this.byUser.clear(userKey);
    return credential;
  }
}
