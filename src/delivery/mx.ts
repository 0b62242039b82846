/**
 * Turns a recipient domain into the hosts to try, in order (RFC 5321 section 5.1): MX records by
 * preference, shuffled among equal preference; the domain itself when it has no MX (implicit
 * MX); a verdict instead when the domain takes no mail (null MX, RFC 7505), does not exist, or
 * DNS fails for now.
 */
import { isIP } from 'node:net';
import type { MxRecord } from 'node:dns';
import { isNoDataError, isNxDomainError, type Resolver } from './resolver.js';

export interface Destination {
  /** The MX host name (or the domain itself for an implicit MX). */
  host: string;
  /** IPv4 addresses first: an IPv6 route is the likelier one to be missing on a relay host. */
  addresses: string[];
}

/** A reply-shaped verdict, so DNS failures are recorded and classified like SMTP replies. */
export interface DnsFailure {
  permanent: boolean;
  code: number;
  response: string;
}

export type MxResult = { ok: true; destinations: Destination[] } | { ok: false; failure: DnsFailure };

const fail = (permanent: boolean, code: number, response: string): MxResult => ({
  ok: false,
  failure: { permanent, code, response },
});

function errorCode(err: unknown): string {
  return (err as NodeJS.ErrnoException)?.code ?? (err as Error)?.message ?? String(err);
}

export async function resolveDestinations(resolver: Resolver, domain: string): Promise<MxResult> {
  let records: MxRecord[];
  try {
    records = await resolver.resolveMx(domain);
  } catch (err) {
    if (isNxDomainError(err)) return fail(true, 550, `550 5.1.2 recipient domain ${domain} does not exist (NXDOMAIN)`);
    if (!isNoDataError(err)) return temporary(domain, 'MX', err);
    records = [];
  }

  if (records.length === 1 && isNullMx(records[0]!)) {
    return fail(true, 550, `550 5.1.10 recipient domain ${domain} accepts no mail (null MX)`);
  }
  // No MX at all: the domain's own addresses stand in as an MX of preference 0.
  const hosts = records.length === 0 ? [domain] : orderByPreference(records.filter((r) => !isNullMx(r)));

  const lookups = await Promise.all(hosts.filter(isHostName).map((host) => addressesOf(resolver, host)));
  const destinations = lookups.filter((d): d is Destination => 'addresses' in d && d.addresses.length > 0);
  if (destinations.length > 0) return { ok: true, destinations };

  const dnsError = lookups.find((d): d is { error: unknown } => 'error' in d);
  if (dnsError) return temporary(domain, 'A/AAAA', dnsError.error);
  return fail(
    true,
    550,
    `550 5.4.4 no usable mail host for ${domain}: ${records.length ? 'MX hosts resolve to no address' : 'no MX and no address records'}`,
  );
}

function temporary(domain: string, type: string, err: unknown): MxResult {
  return fail(false, 451, `451 4.4.3 DNS ${type} lookup for ${domain} failed temporarily (${errorCode(err)})`);
}

function isNullMx(record: MxRecord): boolean {
  return record.exchange === '' || record.exchange === '.';
}

/** MX targets must be host names; an IP literal there is a misconfiguration, skipped. */
function isHostName(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, '');
  return isIP(bare) === 0;
}

function orderByPreference(records: MxRecord[]): string[] {
  const shuffled = [...records];
  for (let i = shuffled.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!];
  }
  // Array sort is stable, so the shuffle survives among equal preferences.
  return shuffled.sort((a, b) => a.priority - b.priority).map((r) => r.exchange.replace(/\.$/, '').toLowerCase());
}

/** A host's addresses; a name with none is skipped, any other lookup failure counts as temporary. */
async function addressesOf(resolver: Resolver, host: string): Promise<Destination | { error: unknown }> {
  const results = await Promise.allSettled([resolver.resolve4(host), resolver.resolve6(host)]);
  const addresses = results.flatMap((r) => (r.status === 'fulfilled' ? r.value : []));
  if (addresses.length > 0) return { host, addresses };
  const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected' && !isNoDataError(r.reason));
  return failure ? { error: failure.reason } : { host, addresses };
}
