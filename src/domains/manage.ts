/** Managing sender domains, for the CLI and the HTTP API alike: add (with a new DKIM key), verify, remove. */
import type { Resolver } from '../delivery/resolver.js';
import { ManagementError } from '../management/error.js';
import { domainName, selectorName } from '../management/names.js';
import type { DkimKeyStore, DomainRecord, DomainStore } from '../queue/storage.js';
import { generateKeys, type KeyAlgorithmChoice } from './dkim-keys.js';
import { dkimName, dkimValue, dnsRecords, newVerificationToken, type DnsRecord, type DomainKeys } from './records.js';
import { verifyDomain, type DomainChecks } from './verify.js';

/**
 * `relay` + year and month (e.g. relay202611): a dated selector lets a later key rotation
 * publish the new key beside the old one instead of replacing it while mail is in flight.
 */
export function defaultSelector(now = new Date()): string {
  return `relay${now.getUTCFullYear()}${String(now.getUTCMonth() + 1).padStart(2, '0')}`;
}

export async function requireDomain(store: Pick<DomainStore, 'get'>, input: string): Promise<DomainRecord> {
  const name = domainName(input);
  const domain = await store.get(name);
  if (!domain) throw new ManagementError('unknown', 'domain', `unknown domain ${name}: add it first`);
  return domain;
}

/**
 * Adds the domain with a new DKIM key (with `both`, an RSA and an Ed25519 key that sign
 * together); returns it, every key's selector and algorithm, and the DNS records to publish.
 */
export async function addDomain(
  store: { domains: Pick<DomainStore, 'get' | 'add'>; dkimKeys: Pick<DkimKeyStore, 'add'> },
  hostname: string,
  input: { name: string; selector?: string; algorithm?: KeyAlgorithmChoice },
  now = Date.now(),
): Promise<{ domain: DomainKeys; keys: { selector: string; algorithm: string }[]; records: DnsRecord[] }> {
  const name = domainName(input.name);
  const selector = selectorName(input.selector ?? defaultSelector());
  if (await store.domains.get(name)) throw new ManagementError('exists', 'domain', `domain ${name} already exists: see its records`);
  const [first, ...more] = generateKeys(name, selector, input.algorithm ?? 'rsa', 'active');
  const domain = { ...first!, name, verificationToken: newVerificationToken() };
  await store.domains.add(domain);
  if (more.length > 0) await store.dkimKeys.add(more, now);
  const keys = [first!, ...more].map((k) => ({ selector: k.selector, algorithm: k.algorithm }));
  return { domain, keys, records: withKeyRecords(dnsRecords(domain, hostname), more) };
}

/** The domain's records, with a DKIM record for each further key beside the one on the domain row. */
export function withKeyRecords(
  records: DnsRecord[],
  keys: { domain: string; selector: string; algorithm: 'rsa' | 'ed25519'; publicKey: string }[],
): DnsRecord[] {
  const shown = new Set(records.map((r) => r.name));
  const extra: DnsRecord[] = keys
    .map((k) => ({ type: 'TXT' as const, name: dkimName(k.domain, k.selector), value: dkimValue(k), purpose: 'dkim' as const }))
    .filter((r) => !shown.has(r.name));
  const at = records.findIndex((r) => r.purpose === 'dkim') + 1;
  return [...records.slice(0, at), ...extra, ...records.slice(at)];
}

export interface DomainCheckResult {
  domain: DomainRecord;
  verified: boolean;
  checks: DomainChecks;
  /** The ownership record could not be looked up: the stored verification state was kept. */
  lookupFailed: boolean;
}

/** Looks up the domain's records and stores the result. */
export async function checkDomain(
  store: Pick<DomainStore, 'get' | 'setVerification'>,
  resolver: Resolver,
  hostname: string,
  input: string,
): Promise<DomainCheckResult> {
  const domain = await requireDomain(store, input);
  const { verified, checks } = await verifyDomain(domain, resolver, hostname);
  // A failed lookup proves nothing either way, so it must not revoke an earlier verification.
  const lookupFailed = checks.verification.status === 'error';
  await store.setVerification(domain.name, lookupFailed ? domain.verified : verified, checks);
  return { domain, verified, checks, lookupFailed };
}

export async function removeDomain(store: Pick<DomainStore, 'remove'>, input: string): Promise<string> {
  const name = domainName(input);
  if (!(await store.remove(name))) throw new ManagementError('unknown', 'domain', `unknown domain ${name}`);
  return name;
}
