/** The JSON a webhook receives for one event. */
import { isoTime } from '../envelope/time.js';
import type { EventRecord } from '../queue/storage.js';

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
    tls: event.tls ?? null,
    at: isoTime(event.at),
    tags: event.tags,
    ...(event.phase && { phase: event.phase }),
  };
}
