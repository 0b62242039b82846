/**
 * Internationalised addresses (RFC 6531): an envelope address with non-ASCII characters can only
 * go to a host that offers SMTPUTF8 (nodemailer then adds the SMTPUTF8 parameter itself).
 * Without it there is no faithful downgrade, so the recipient bounces with 5.6.7 (section 3.5).
 */
import type { DeliveryJob } from '../queue/storage.js';
import type { Reply } from './reply.js';
import type { Session } from './pool.js';
import { offeredExtensions } from './smtp-connection-internals.js';

const needsSmtpUtf8 = (address: string) => /[^\x00-\x7f]/.test(address);

function offersSmtpUtf8(session: Session): boolean {
  return offeredExtensions(session.connection).includes('SMTPUTF8');
}

/** The recipients this session cannot take, each with its 5.6.7 reply; empty when all can go. */
export function smtpUtf8Refusals(job: DeliveryJob, session: Session): Map<string, Reply> {
  const refusals = new Map<string, Reply>();
  if (offersSmtpUtf8(session)) return refusals;
  const senderNeedsIt = needsSmtpUtf8(job.mailFrom);
  for (const { address } of job.recipients) {
    if (!senderNeedsIt && !needsSmtpUtf8(address)) continue;
    const which = senderNeedsIt ? `sender <${job.mailFrom}>` : `recipient <${address}>`;
    refusals.set(address, { code: 553, text: `553 5.6.7 ${session.peer} does not offer SMTPUTF8, needed for the ${which} (RFC 6531)` });
  }
  return refusals;
}
