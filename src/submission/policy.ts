/**
 * Sender policy: the envelope sender and the header From/Sender must be in a domain that the
 * credential may send for and that has passed `relay domain verify`.
 */
import type { CredentialRecord } from '../queue/store.js';
import type { DomainLookup } from './domain-cache.js';
import { reply, type ReplySubject, type SmtpReply } from './replies.js';

export function domainOfAddress(address: string): string {
  return address.slice(address.lastIndexOf('@') + 1).toLowerCase();
}

/** Undefined when `address` may be used by `credential`, else the 550 5.7.1 refusal. */
export function checkSender(
  domains: DomainLookup,
  credential: CredentialRecord,
  address: string,
  field: Exclude<ReplySubject, 'recipients'>,
): SmtpReply | undefined {
  if (!address.includes('@')) return reply(550, '5.7.1', `${field} <${address}> has no domain`, field);
  const domain = domainOfAddress(address);
  if (!credential.domains.includes(domain) || !domains.getDomain(domain)?.verified) {
    return reply(550, '5.7.1', `sender domain ${domain} is not verified for credential ${credential.name} (${field})`, field);
  }
  return undefined;
}
