/** What webhooks can subscribe to, and the JSON a webhook receives for one event. */
import { isoTime } from '../envelope/time.js';
import type { EventRecord, RecipientStatus } from '../queue/storage.js';

/** Every status but "queued" (the API's own 202 says that). */
export const WEBHOOK_STATUSES: readonly RecipientStatus[] = [
  'delivered',
  'deferred',
  'bounced',
  'expired',
  'suppressed',
  'complained',
  'unsubscribed',
];

export function webhookPayload(event: EventRecord) {
  return {
    id: event.id,
    type: event.status,
    queue_id: event.queueId,
    message_id: event.messageId,
    recipient: event.recipient,
    domain: event.domain,
    smtp_code: event.smtpCode,
    response: event.response,
    category: event.category,
    at: isoTime(event.at),
  };
}
