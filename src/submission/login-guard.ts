/**
 * AUTH brute-force protection shared by every door and every node (the failures are kept in
 * storage). Failures are counted per client IP, per username from that IP, and per username
 * from anywhere with a higher threshold; past limits.auth_failures_per_ip, _per_user or
 * _per_user_total within limits.auth_failure_window, logins from that IP, or for that username
 * (from that IP, or from anywhere), are refused with 454 4.7.0 for limits.auth_lockout, right
 * password or not, so a locked-out attacker learns nothing. Counting per username and IP keeps
 * one attacker from locking a real user out everywhere. Successful logins are not slowed.
 */
import type { RelayConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { Clock } from '../envelope/time.js';
import type { CredentialRecord, CredentialStore, LimitStore, LoginFailures } from '../queue/storage.js';
import { Authenticator } from './auth.js';
import { reply } from './replies.js';

type Limit = 'auth_failures_per_ip' | 'auth_failures_per_user' | 'auth_failures_per_user_total';

export class LoginGuard {
  private readonly authenticator: Authenticator;

  constructor(
    credentials: Pick<CredentialStore, 'byUsername' | 'recordOldSecretLogin'>,
    private readonly limits: LimitStore,
    private readonly config: RelayConfig,
    private readonly logger: Logger,
    private readonly now: Clock = Date.now,
  ) {
    // Counted and logged so the operator sees which apps still use a rotated-out password.
    this.authenticator = new Authenticator(credentials, async (credential) => {
      this.logger.warn(
        { credential: credential.name, graceUntil: new Date(credential.rotation!.until).toISOString() },
        'login with the password a rotation replaced',
      );
      await credentials.recordOldSecretLogin(credential.name, Date.now());
    });
  }

  /** The credential, or throws 535 5.7.8 (wrong login) or 454 4.7.0 (cooling off). */
  async authenticate(username: string, password: string, remoteAddress: string): Promise<CredentialRecord> {
    const keys = this.keys(username, remoteAddress);
    const counts = await this.failures(keys);
    if (this.isLocked(keys, counts)) {
      this.logger.warn({ remote: remoteAddress }, 'authentication refused: too many recent failures');
      throw reply(454, '4.7.0', 'too many failed logins: try again later');
    }
    const credential = await this.authenticator.authenticate(username, password);
    if (!credential) {
      const now = this.now();
      const since = now - this.config.limits.auth_failure_window;
      await Promise.all(keys.map(([key]) => this.limits.recordLoginFailure(key, now, since)));
      this.logger.warn({ remote: remoteAddress }, 'authentication failed');
      throw reply(535, '5.7.8', 'Authentication credentials invalid');
    }
    // Only a login that follows failures writes: the common case stays a read.
    if (counts[1]!.count > 0) await this.limits.clearLoginFailures(keys[1]![0]);
    return credential;
  }

  private keys(username: string, remoteAddress: string): [string, Limit][] {
    const user = username.toLowerCase();
    return [
      [`ip:${remoteAddress}`, 'auth_failures_per_ip'],
      [`user-ip:${user} ${remoteAddress}`, 'auth_failures_per_user'],
      [`user:${user}`, 'auth_failures_per_user_total'],
    ];
  }

  /** Failures under each key; a lockout outlives the window it was earned in, so look back over both. */
  private failures(keys: [string, Limit][]): Promise<LoginFailures[]> {
    const { auth_failure_window: window, auth_lockout: lockout } = this.config.limits;
    return this.limits.loginFailures(
      keys.map(([key]) => key),
      this.now() - window - lockout,
    );
  }

  private isLocked(keys: [string, Limit][], counts: LoginFailures[]): boolean {
    const now = this.now();
    const lockout = this.config.limits.auth_lockout;
    return counts.some(({ count, lastAt }, i) => count >= this.config.limits[keys[i]![1]] && lastAt !== null && lastAt + lockout > now);
  }
}
