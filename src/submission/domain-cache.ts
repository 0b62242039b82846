/**
 * Verified sender domains remembered for a moment: each message looks its domain up three or
 * more times (envelope sender, header From and Sender, the signing key), and the row carries
 * the private key PEM. Only verified records are kept, so a domain added or verified while the
 * relay runs is used at once; a removal, an unverification or a new key takes effect within
 * TTL_MS.
 */
import type { DkimKeyStore, DomainRecord, DomainStore } from '../queue/storage.js';
import type { DkimKey } from '../signing/dkim.js';

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

/**
 * The keys a verified domain signs with, remembered for TTL_MS like the domain itself: a key
 * activated from the CLI or by another node signs on every node within TTL_MS, without a restart.
 */
export class SigningKeyCache {
  private readonly entries = new Map<string, { keys: DkimKey[]; until: number }>();

  constructor(private readonly store: Pick<DkimKeyStore, 'active'>) {}

  async get(domain: DomainRecord): Promise<DkimKey[]> {
    const now = Date.now();
    const cached = this.entries.get(domain.name);
    if (cached && cached.until > now) return cached.keys;
    const active = (await this.store.active(domain.name)).flatMap(({ selector, algorithm, privateKeyPem }) =>
      privateKeyPem === null ? [] : [{ domain: domain.name, selector, algorithm, privateKeyPem }],
    );
    // A domain added by an older release (during a rolling upgrade) has only the key on its row.
    const keys =
      active.length > 0
        ? active
        : [{ domain: domain.name, selector: domain.selector, algorithm: domain.algorithm, privateKeyPem: domain.privateKeyPem }];
    this.entries.set(domain.name, { keys, until: now + TTL_MS });
    return keys;
  }
}
