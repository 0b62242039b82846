/** The DNS resolver used for MX/A/AAAA/TXT: `delivery.dns_servers` when set, else the system's. */
import { promises as dns } from 'node:dns';
import type { RelayConfig } from '../config/schema.js';

export type Resolver = dns.Resolver;

export function createResolver(config: Pick<RelayConfig, 'delivery'>): Resolver {
  const resolver = new dns.Resolver({ timeout: config.delivery.dns_timeout, tries: 2 });
  if (config.delivery.dns_servers?.length) resolver.setServers(config.delivery.dns_servers);
  return resolver;
}

/** DNS error codes that mean "try again later" rather than "this name does not exist". */
const TEMPORARY_CODES = new Set(['ESERVFAIL', 'ETIMEOUT', 'ECONNREFUSED', 'EREFUSED', 'ECANCELLED', 'EAI_AGAIN', 'ECONNRESET']);

export function isTemporaryDnsError(err: unknown): boolean {
  return TEMPORARY_CODES.has((err as NodeJS.ErrnoException)?.code ?? '');
}

/** NXDOMAIN: the name does not exist at all. */
export function isNxDomainError(err: unknown): boolean {
  return (err as NodeJS.ErrnoException)?.code === 'ENOTFOUND';
}

/** NXDOMAIN or "no records of that type". */
export function isNoDataError(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException)?.code;
  return code === 'ENOTFOUND' || code === 'ENODATA';
}
