/**
 * SMTP replies with exact enhanced status codes. smtp-server prefixes every application error
 * with a default enhanced code for its reply code (550 always becomes 5.1.1), so a refusal for
 * policy (5.7.1) would read "550 5.1.1 5.7.1 ...". The patch below lets a reply whose text
 * already starts with an enhanced code go out as written, and turns smtp-server's non-standard
 * 538 (AUTH before STARTTLS) into the standard 530 5.7.0.
 */
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';

const ENHANCED_CODE = /^[245]\.\d{1,3}\.\d{1,3} /;

/** What a refusal is about, so another door (the HTTP API) can name its own field for it. */
export type ReplySubject = 'envelope sender' | 'header From' | 'header Sender' | 'recipients';

export class SmtpReply extends Error {
  constructor(
    readonly responseCode: number,
    enhanced: string,
    text: string,
    readonly subject?: ReplySubject,
  ) {
    super(`${enhanced} ${text}`);
  }
}

export const reply = (code: number, enhanced: string, text: string, subject?: ReplySubject) =>
  new SmtpReply(code, enhanced, text, subject);

let patched = false;

export function useExactEnhancedCodes(): void {
  if (patched) return;
  patched = true;
  const send = SMTPConnection.prototype.send;
  SMTPConnection.prototype.send = function (code, data, context) {
    if (code === 538) return send.call(this, 530, '5.7.0 Must issue a STARTTLS command first', false);
    if (typeof data === 'string' && ENHANCED_CODE.test(data)) return send.call(this, code, data, false);
    return send.call(this, code, data, context);
  };
}
