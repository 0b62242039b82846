/**
 * SMTP AUTH against the credentials store. scrypt is slow by design, so a successful login is
 * remembered for a short while keyed by a SHA-256 of username and password; the row is still
 * read on every login, so a revoked or re-issued credential stops working at once. An unknown
 * username is verified against a dummy hash with the same parameters, so a failed login takes
 * as long whether or not the username exists.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { CredentialRecord, CredentialStore } from '../queue/storage.js';
import { hashPasswordAsync, verifyPassword } from './password.js';

const CACHE_TTL_MS = 5 * 60_000;
const CACHE_MAX = 10_000;

export class Authenticator {
  /** login digest → the password hash it was verified against, and when. */
  private readonly verified = new Map<string, { passwordHash: string; at: number }>();
  /** The hash of a random password nobody knows, for unknown usernames. */
  private readonly dummyHash: Promise<string> = hashPasswordAsync(randomBytes(16).toString('base64'));

  constructor(private readonly credentials: Pick<CredentialStore, 'byUsername'>) {}

  async authenticate(username: string, password: string): Promise<CredentialRecord | undefined> {
    const credential = await this.credentials.byUsername(username);
    if (!credential) {
      await verifyPassword(password, await this.dummyHash);
      return undefined;
    }
    const key = createHash('sha256').update(username).update('\0').update(password).digest('base64');
    const hit = this.verified.get(key);
    if (hit && hit.passwordHash === credential.passwordHash && Date.now() - hit.at < CACHE_TTL_MS) return credential;
    if (!(await verifyPassword(password, credential.passwordHash))) return undefined;
    if (this.verified.size >= CACHE_MAX) this.verified.clear();
    this.verified.set(key, { passwordHash: credential.passwordHash, at: Date.now() });
    return credential;
  }
}
