/**
 * Verified sender domains remembered for a moment: each message looks its domain up three or
 * more times (envelope sender, header From and Sender, the signing key), and the row carries
 * the private key PEM. Only verified records are kept, so a domain added or verified while the
 * relay runs is used at once; a removal, an unverification or a new key takes effect within
 * TTL_MS.
 */
import type { DomainRecord, Store } from '../queue/store.js';

const TTL_MS = 2000;

/** The one method of Store that sender policy and signing need. */
export interface DomainLookup {
  getDomain(name: string): DomainRecord | undefined;
}

export class VerifiedDomainCache implements DomainLookup {
  private readonly entries = new Map<string, { record: DomainRecord; until: number }>();

  constructor(private readonly store: Pick<Store, 'getDomain'>) {}

  getDomain(name: string): DomainRecord | undefined {
    const key = name.toLowerCase();
    const now = Date.now();
    const cached = this.entries.get(key);
    if (cached && cached.until > now) return cached.record;
    const record = this.store.getDomain(key);
    if (record?.verified) this.entries.set(key, { record, until: now + TTL_MS });
    else this.entries.delete(key);
    return record;
  }
}
