/**
 * Verified sender domains remembered for a moment: each message looks its domain up three or
 * more times (envelope sender, header From and Sender, the signing key), and the row carries
 * the private key PEM. Only verified records are kept, so a domain added or verified while the
 * relay runs is used at once; a removal, an unverification or a new key takes effect within
 * TTL_MS.
 */
import type { DomainRecord, DomainStore } from '../queue/storage.js';

const TTL_MS = 2000;

/** What sender policy and signing ask of the domain store. */
export interface DomainLookup {
  get(name: string): Promise<DomainRecord | undefined>;
}

export class VerifiedDomainCache implements DomainLookup {
  private readonly entries = new Map<string, { record: DomainRecord; until: number }>();

  constructor(private readonly domains: Pick<DomainStore, 'get'>) {}

  async get(name: string): Promise<DomainRecord | undefined> {
    const key = name.toLowerCase();
    const now = Date.now();
    const cached = this.entries.get(key);
    if (cached && cached.until > now) return cached.record;
    const record = await this.domains.get(key);
    if (record?.verified) this.entries.set(key, { record, until: now + TTL_MS });
    else this.entries.delete(key);
    return record;
  }
}
