/**
 * Checks a sender domain's published DNS records against what Relay expects and explains each
 * result in words an operator can act on. Only the ownership record decides `verified`; DKIM,
 * SPF and DMARC are reported so deliverability problems are visible before mail bounces.
 */
import { isNoDataError, isTemporaryDnsError, type Resolver } from '../delivery/resolver.js';
import {
  dkimName,
  dkimValue,
  dmarcName,
  dmarcValue,
  spfValue,
  verificationName,
  verificationValue,
  type DomainKeys,
  type RecordPurpose,
} from './records.js';

export type CheckStatus = 'found' | 'missing' | 'mismatched' | 'error';

export interface Check {
  status: CheckStatus;
  expected?: string;
  /** The relevant TXT records seen, each with its strings joined. */
  found?: string[];
  message: string;
}

export type DomainChecks = Record<RecordPurpose, Check>;

export interface DomainVerification {
  verified: boolean;
  checks: DomainChecks;
}

type Lookup = { name: string; records: string[] } | { name: string; error: string };

/** `hostname` is the relay's own name (config `hostname`), which SPF must authorize. */
export async function verifyDomain(domain: DomainKeys, resolver: Resolver, hostname: string): Promise<DomainVerification> {
  const [verification, dkim, spf, dmarc] = await Promise.all([
    lookupTxt(resolver, verificationName(domain.name)),
    lookupTxt(resolver, dkimName(domain.name, domain.selector)),
    lookupTxt(resolver, domain.name),
    lookupTxt(resolver, dmarcName(domain.name)),
  ]);
  const checks: DomainChecks = {
    verification: checkVerification(verification, domain),
    dkim: checkDkim(dkim, domain),
    spf: checkSpf(spf, domain.name, hostname),
    dmarc: checkDmarc(dmarc, domain.name),
  };
  return { verified: checks.verification.status === 'found', checks };
}

/** Whether a DKIM key's record is published at its selector as Relay expects. */
export async function verifyDkimKey(key: DkimKeyFields, resolver: Resolver): Promise<Check> {
  return checkDkim(await lookupTxt(resolver, dkimName(key.name, key.selector)), key);
}

async function lookupTxt(resolver: Resolver, name: string): Promise<Lookup> {
  try {
    // Long TXT records arrive as several strings that together form one value.
    return { name, records: (await resolver.resolveTxt(name)).map((chunks) => chunks.join('')) };
  } catch (err) {
    if (isNoDataError(err)) return { name, records: [] };
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    return {
      name,
      error: isTemporaryDnsError(err)
        ? `the DNS lookup of TXT records at ${name} failed temporarily (${code}): try again in a few minutes`
        : `the DNS lookup of TXT records at ${name} failed (${code}): check the domain's DNS servers`,
    };
  }
}

function checkVerification(lookup: Lookup, domain: DomainKeys): Check {
  const expected = verificationValue(domain.verificationToken);
  if ('error' in lookup) return { status: 'error', expected, message: lookup.error };
  const found = lookup.records;
  if (found.some((record) => record.trim() === expected)) {
    return { status: 'found', expected, found, message: `TXT record at ${lookup.name} proves ownership of ${domain.name}` };
  }
  if (found.some((record) => record.trim().startsWith('relay-verification='))) {
    return {
      status: 'mismatched',
      expected,
      found,
      message: `TXT record at ${lookup.name} has a different token than Relay's: replace it with "${expected}"`,
    };
  }
  return { status: 'missing', expected, found, message: `no TXT record at ${lookup.name}: publish "${expected}" there` };
}

/** What a DKIM record is derived from: the domain's name and one of its keys. */
type DkimKeyFields = Pick<DomainKeys, 'name' | 'selector' | 'algorithm' | 'publicKey'>;

function checkDkim(lookup: Lookup, domain: DkimKeyFields): Check {
  const expected = dkimValue(domain);
  if ('error' in lookup) return { status: 'error', expected, message: lookup.error };
  const found = lookup.records;
  const keys = found.map(parseTags).filter((tags) => tags.has('p'));
  const publishHint = `publish the value shown by \`relay domain records ${domain.name}\``;
  if (keys.length === 0) {
    return { status: 'missing', expected, found, message: `no DKIM key at ${lookup.name}: ${publishHint}` };
  }
  const matching = keys.find((tags) => tags.get('p')!.replace(/\s+/g, '') === domain.publicKey);
  if (!matching) {
    return {
      status: 'mismatched',
      expected,
      found,
      message: `TXT record at ${lookup.name} has a different public key than Relay's: ${publishHint}`,
    };
  }
  // Verifiers reject a key whose k= (default rsa) does not match its type.
  const keyType = (matching.get('k') ?? 'rsa').toLowerCase();
  if (keyType !== domain.algorithm) {
    return {
      status: 'mismatched',
      expected,
      found,
      message: `DKIM record at ${lookup.name} says k=${keyType} but the key is ${domain.algorithm}: set k=${domain.algorithm}`,
    };
  }
  return { status: 'found', expected, found, message: `DKIM record at ${lookup.name} matches Relay's signing key` };
}

function checkSpf(lookup: Lookup, domainName: string, hostname: string): Check {
  const expected = spfValue(hostname);
  if ('error' in lookup) return { status: 'error', expected, message: lookup.error };
  const found = lookup.records.filter((record) => /^v=spf1(\s|$)/i.test(record.trim()));
  if (found.length === 0) {
    return { status: 'missing', expected, found, message: `no SPF record at ${domainName}: publish "${expected}"` };
  }
  if (found.length > 1) {
    return {
      status: 'mismatched',
      expected,
      found,
      message: `${domainName} has ${found.length} SPF records, which receivers treat as an error (RFC 7208): merge them into one that includes a:${hostname}`,
    };
  }
  if (!spfAuthorizes(found[0]!, hostname)) {
    return {
      status: 'mismatched',
      expected,
      found,
      message: `SPF record at ${domainName} does not mention ${hostname}: add a:${hostname} before its "all" term (ignore this if it lists Relay's IP addresses instead)`,
    };
  }
  return { status: 'found', expected, found, message: `SPF record at ${domainName} authorizes ${hostname}` };
}

function checkDmarc(lookup: Lookup, domainName: string): Check {
  const expected = dmarcValue(domainName);
  if ('error' in lookup) return { status: 'error', expected, message: lookup.error };
  const found = lookup.records;
  if (!found.some((record) => /^v=DMARC1\s*(;|$)/i.test(record.trim()))) {
    return { status: 'missing', expected, found, message: `no DMARC record at ${lookup.name}: publish "${expected}" to start with` };
  }
  return { status: 'found', expected, found, message: `DMARC record found at ${lookup.name}` };
}

/** Tag=value pairs of a DKIM key record, names lowercased. */
function parseTags(record: string): Map<string, string> {
  const tags = new Map<string, string>();
  for (const part of record.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0) tags.set(part.slice(0, eq).trim().toLowerCase(), part.slice(eq + 1).trim());
  }
  return tags;
}

/** True if a passing a:, mx: or include: term names the hostname. */
function spfAuthorizes(record: string, hostname: string): boolean {
  const host = normalizeHost(hostname);
  return record
    .trim()
    .split(/\s+/)
    .slice(1)
    .some((term) => {
      const match = /^\+?(a|mx|include):([^/]+)(\/.*)?$/i.exec(term);
      return match !== null && normalizeHost(match[2]!) === host;
    });
}

function normalizeHost(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}
