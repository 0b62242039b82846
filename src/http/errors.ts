/**
 * API errors: `{ "error": { "status", "field", "message", "smtp_reply"? } }`. A pipeline refusal
 * (SmtpReply) keeps its exact SMTP text and gets the HTTP status of its kind; the field is the
 * request member it concerns, so a client can point at what to fix.
 */
import { refusalKind } from '../submission/refusal-reasons.js';
import type { SmtpReply } from '../submission/replies.js';

/** Seconds a client should wait after a 429 or 503. */
export const RETRY_AFTER_SECONDS = 30;

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly field?: string,
    readonly smtpReply?: string,
  ) {
    super(message);
  }

  toJSON() {
    return { error: { status: this.status, field: this.field ?? null, message: this.message, ...(this.smtpReply && { smtp_reply: this.smtpReply }) } };
  }
}

/** An SmtpReply as an ApiError; `fieldFor` names the request member the refusal is about. */
export function refusalToApiError(refusal: SmtpReply, fieldFor: (text: string) => string | undefined): ApiError {
  const text = refusal.message.replace(/^\d\.\d+\.\d+ /, '');
  return new ApiError(refusalKind(refusal).httpStatus, text, fieldFor(refusal.message), `${refusal.responseCode} ${refusal.message}`);
}
