/**
 * Credentials as they are now, remembered for a moment: a session that logged in keeps its
 * credential record, so each transaction re-reads it here, and a revoke (from any node's CLI or
 * API) stops sessions already logged in within TTL_MS.
 */
import type { CredentialRecord, CredentialStore } from '../queue/storage.js';

const TTL_MS = 2000;

export class ActiveCredentials {
  private readonly entries = new Map<string, { record: CredentialRecord | undefined; until: number }>();

  constructor(private readonly credentials: Pick<CredentialStore, 'get'>) {}

  /** The credential, or undefined once revoked or removed. */
  async get(name: string): Promise<CredentialRecord | undefined> {
    const now = Date.now();
    const cached = this.entries.get(name);
    if (cached && cached.until > now) return cached.record;
    const found = await this.credentials.get(name);
    const record = found && found.revokedAt === null ? found : undefined;
    if (this.entries.size > 10_000) this.entries.clear();
    this.entries.set(name, { record, until: now + TTL_MS });
    return record;
  }
}
