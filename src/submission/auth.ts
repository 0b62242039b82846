/**
 * SMTP AUTH against the credentials store. scrypt is slow by design, so a successful login is
 * remembered for a short while keyed by a SHA-256 of username and password; the row is still
 * read on every login, so a revoked or re-issued credential stops working at once. An unknown
 * username is verified against a dummy hash with the same parameters, so a failed login takes
 * as long whether or not the username exists. During a rotation's grace the old password
 * works too, and each login with it is reported to `onOldSecret`.
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

  constructor(
    private readonly credentials: Pick<CredentialStore, 'byUsername'>,
    private readonly onOldSecret: (credential: CredentialRecord) => Promise<void> = async () => undefined,
  ) {}

  async authenticate(username: string, password: string): Promise<CredentialRecord | undefined> {
    const credential = await this.credentials.byUsername(username);
    if (!credential) {
      await verifyPassword(password, await this.dummyHash);
      return undefined;
    }
    const key = createHash('sha256').update(username).update('\0').update(password).digest('base64');
    const hit = this.verified.get(key);
    const now = Date.now();
    const old = credential.rotation && credential.rotation.until > now ? credential.rotation.oldPasswordHash : undefined;
    if (hit && now - hit.at < CACHE_TTL_MS) {
      if (hit.passwordHash === credential.passwordHash) return credential;
      if (hit.passwordHash === old) return this.oldSecretUsed(credential);
    }
    if (await verifyPassword(password, credential.passwordHash)) return this.remember(key, credential.passwordHash, credential);
    if (old !== undefined && (await verifyPassword(password, old))) return this.oldSecretUsed(this.remember(key, old, credential));
    return undefined;
  }

  private remember(key: string, passwordHash: string, credential: CredentialRecord): CredentialRecord {
    if (this.verified.size >= CACHE_MAX) this.verified.clear();
    this.verified.set(key, { passwordHash, at: Date.now() });
    return credential;
  }

  private async oldSecretUsed(credential: CredentialRecord): Promise<CredentialRecord> {
    await this.onOldSecret(credential);
    return credential;
  }
}
