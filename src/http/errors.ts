/**
 * API errors: `{ "error": { "status", "field", "message", "smtp_reply"? } }`. A pipeline refusal
 * (SmtpReply) keeps its exact SMTP text and gets the HTTP status of its kind; the field is the
 * request member it concerns, so a client can point at what to fix.
 */
import { refusalKind } from '../submission/refusal-reasons.js';
import type { ReplySubject, SmtpReply } from '../submission/replies.js';

/** Seconds a client should wait after a 429 or 503. */
export const RETRY_AFTER_SECONDS = 30;

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly field?: string,
    readonly smtpReply?: string,
    /** Seconds for the Retry-After header of a 429 or 503, when not the default. */
    readonly retryAfter?: number,
  ) {
    super(message);
  }

  toJSON() {
    return {
      error: {
        status: this.status,
        field: this.field ?? null,
        message: this.message,
        ...(this.smtpReply && { smtp_reply: this.smtpReply }),
      },
    };
  }
}

/** An SmtpReply as an ApiError; `fields` names, per subject, the request member the refusal is about. */
export function refusalToApiError(refusal: SmtpReply, fields: Record<ReplySubject, string>): ApiError {
  const text = refusal.message.replace(/^\d\.\d+\.\d+ /, '');
  const field = refusal.subject && fields[refusal.subject];
  return new ApiError(refusalKind(refusal).httpStatus, text, field, `${refusal.responseCode} ${refusal.message}`);
}
