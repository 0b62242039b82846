/**
 * Recipient address rules beyond syntax: no relaying tricks that would make the next hop route
 * the mail somewhere else (percent hack, bang paths, quoted local parts hiding an "@"), no IP
 * literals and no unqualified or single-label domains (which resolve inside our own network).
 * Source routes are stripped by smtp-server as RFC 5321 asks.
 */
import { domainOf, localPartOf } from '../envelope/address.js';
import { reply, type SmtpReply } from './replies.js';

const ADDRESS = /^[^@\s"]+@[^@\s]+$/;

export function checkRecipientAddress(address: string): SmtpReply | undefined {
  if (!ADDRESS.test(address)) return reply(501, '5.1.3', `bad recipient address syntax: <${address}>`);
  const local = localPartOf(address);
  const domain = domainOf(address);
  if (/[%!]/.test(local)) {
    return reply(550, '5.7.1', `recipient <${address}> routes through another host (percent hack or bang path): not accepted`);
  }
  if (domain.startsWith('[')) return reply(550, '5.7.1', `recipient <${address}>: IP address literals are not accepted`);
  if (!domain.includes('.') || domain.endsWith('.')) {
    return reply(501, '5.1.2', `recipient <${address}> has no fully qualified domain`);
  }
  return undefined;
}
