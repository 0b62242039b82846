/**
 * SMTP replies with exact enhanced status codes: an SmtpReply's text starts with its enhanced
 * code ("5.7.1 ..."), and useExactEnhancedCodes() makes smtp-server send it as written instead
 * of adding its own default code in front (see smtp-server-internals.ts).
 */
export { useExactEnhancedCodes } from './smtp-server-internals.js';

/** What a refusal is about, so another door (the HTTP API) can name its own field for it. */
export type ReplySubject =
  'envelope sender' | 'header From' | 'header Sender' | 'header Reply-To' | 'recipients' | 'sandbox recipient' | 'tags';

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

export const reply = (code: number, enhanced: string, text: string, subject?: ReplySubject) => new SmtpReply(code, enhanced, text, subject);
