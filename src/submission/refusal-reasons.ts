/**
 * What kind of refusal an SmtpReply is, from its enhanced status code: the reason label of the
 * rejection metric and the HTTP status the API answers with. One table so both stay in step.
 */
import type { SmtpReply } from './replies.js';

export interface RefusalKind {
  reason: string;
  /** 4xx for the client's mistakes and limits, 503 for temporary local trouble (never 500). */
  httpStatus: number;
}

const KINDS: [pattern: RegExp, kind: RefusalKind][] = [
  [/^5\.7\.1$/, { reason: 'sender_policy', httpStatus: 403 }],
  [/^5\.1\.1$/, { reason: 'suppressed', httpStatus: 422 }],
  [/^5\.1\.3$/, { reason: 'bad_address', httpStatus: 422 }],
  [/^[45]\.5\.3$/, { reason: 'too_many_recipients', httpStatus: 422 }],
  [/^5\.3\.4$/, { reason: 'too_big', httpStatus: 413 }],
  [/^5\.6\.\d+$/, { reason: 'content', httpStatus: 422 }],
  [/^5\.5\.0$/, { reason: 'idempotency_conflict', httpStatus: 409 }],
  [/^5\.5\.4$/, { reason: 'bad_tags', httpStatus: 400 }],
  [/^4\.7\.\d+$/, { reason: 'rate_limited', httpStatus: 429 }],
  [/^5\.7\.\d+$/, { reason: 'policy', httpStatus: 403 }],
  [/^4\.\d+\.\d+$/, { reason: 'temporary', httpStatus: 503 }],
];

export function refusalKind(refusal: SmtpReply): RefusalKind {
  const enhanced = refusal.message.split(' ', 1)[0]!;
  return KINDS.find(([pattern]) => pattern.test(enhanced))?.[1] ?? { reason: 'other', httpStatus: 422 };
}
