/**
 * Sender policy: the envelope sender and the header From/Sender must be in a domain that the
 * credential may send for and that has passed `relay domain verify`.
 */
import { domainOf } from '../envelope/address.js';
import type { CredentialRecord } from '../queue/storage.js';
import type { DomainLookup } from './domain-cache.js';
import { reply, type SmtpReply } from './replies.js';

/** Undefined when `address` may be used by `credential`, else the 550 5.7.1 refusal. */
export async function checkSender(
  domains: DomainLookup,
  credential: CredentialRecord,
  address: string,
  field: 'envelope sender' | 'header From' | 'header Sender',
): Promise<SmtpReply | undefined> {
  if (!address.includes('@')) return reply(550, '5.7.1', `${field} <${address}> has no domain`, field);
  const domain = domainOf(address);
  if (!credential.domains.includes(domain) || !(await domains.get(domain))?.verified) {
    return reply(550, '5.7.1', `sender domain ${domain} is not verified for credential ${credential.name} (${field})`, field);
  }
  return undefined;
}
