/**
 * Which outcomes put an address on the suppression list: a permanent failure (bounced) suppresses
 * the recipient for the credential that sent to it, so one tenant's hard bounces do not stop
 * another tenant's mail. Temporary failures and expiry suppress nothing, and neither does a
 * refusal of our own envelope sender (a 501 or 553 to MAIL FROM): the recipient was never judged.
 */
import type { DeliveryJob, NewSuppression, RecipientOutcome } from '../queue/storage.js';

export function suppressionsFor(job: DeliveryJob, outcomes: RecipientOutcome[]): NewSuppression[] {
  const addressOf = new Map(job.recipients.map((r) => [r.id, r.address]));
  return outcomes.flatMap((o) => {
    const address = addressOf.get(o.recipientId);
    if (o.status !== 'bounced' || o.senderRefused || address === undefined) return [];
    return [{ address, reason: o.response ?? 'bounced', credential: job.credential }];
  });
}
