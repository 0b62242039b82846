/**
 * The JSON message of `POST /v1/messages` as RFC 5322 bytes, built by nodemailer's MailComposer
 * (MIME structure, encodings, attachments). Bcc recipients are in the envelope only.
 */
import MailComposer from 'nodemailer/lib/mail-composer';
import { addressesIn } from '../submission/message.js';

export type AddressList = string | string[];

export interface MessageRequest {
  from: string;
  to?: AddressList;
  cc?: AddressList;
  bcc?: AddressList;
  reply_to?: AddressList;
  subject?: string;
  text?: string;
  html?: string;
  attachments?: { filename: string; content: string; content_type?: string }[];
  headers?: Record<string, string>;
  template?: { name: string; version?: number; variables?: Record<string, unknown> };
}

/** Every address of the field(s), display names stripped. */
export function addressesOf(...lists: (AddressList | undefined)[]): string[] {
  return lists.flatMap((list) => (list === undefined ? [] : [list].flat().flatMap((entry) => addressesIn(entry))));
}

export async function composeMessage(message: MessageRequest & { subject: string }, idempotencyKey?: string): Promise<Buffer> {
  const composer = new MailComposer({
    from: message.from,
    to: message.to,
    cc: message.cc,
    bcc: message.bcc,
    replyTo: message.reply_to,
    subject: message.subject,
    text: message.text,
    html: message.html,
    attachments: message.attachments?.map((a) => ({ filename: a.filename, content: a.content, encoding: 'base64', contentType: a.content_type })),
    // The pipeline reads and strips Idempotency-Key, as it does for SMTP clients that send one.
    headers: { ...message.headers, ...(idempotencyKey && { 'Idempotency-Key': idempotencyKey }) },
  });
  return composer.compile().build();
}
