/** Managing sender domains, for the CLI and the HTTP API alike: add (with a new DKIM key), verify, remove. */
import type { Resolver } from '../delivery/resolver.js';
import { ManagementError } from '../management/error.js';
import { domainName, selectorName } from '../management/names.js';
import type { DomainRecord, DomainStore } from '../queue/storage.js';
import { generateDkimKey, type DkimAlgorithm } from '../signing/keys.js';
import { dnsRecords, newVerificationToken, type DnsRecord, type DomainKeys } from './records.js';
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

/** Adds the domain with a new DKIM key; returns it with the DNS records to publish. */
export async function addDomain(
  store: Pick<DomainStore, 'get' | 'add'>,
  hostname: string,
  input: { name: string; selector?: string; algorithm?: DkimAlgorithm },
): Promise<{ domain: DomainKeys; records: DnsRecord[] }> {
  const name = domainName(input.name);
  const selector = selectorName(input.selector ?? defaultSelector());
  const algorithm = input.algorithm ?? 'rsa';
  if (await store.get(name)) throw new ManagementError('exists', 'domain', `domain ${name} already exists: see its records`);
  const { privateKeyPem, publicKey } = generateDkimKey(algorithm);
  const domain = { name, selector, algorithm, privateKeyPem, publicKey, verificationToken: newVerificationToken() };
  await store.add(domain);
  return { domain, records: dnsRecords(domain, hostname) };
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
