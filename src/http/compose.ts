/**
 * The JSON message of `POST /v1/messages` as RFC 5322 bytes, built by nodemailer's MailComposer
 * (MIME structure, encodings, attachments). Bcc recipients are in the envelope only.
 */
import MailComposer from 'nodemailer/lib/mail-composer';
import { checkEnvelopeAddress } from '../submission/envelope-address.js';
import { parseMailboxList } from '../submission/header-address.js';
import { checkRecipientAddress } from '../submission/recipient-address.js';
import type { SmtpReply } from '../submission/replies.js';
import { TAG_HEADER } from '../submission/tags.js';
import { ApiError } from './errors.js';
import { ONE_CLICK } from '../feedback/outbound.js';

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
  tags?: string[];
  /** One-click unsubscribe headers: the marker left here is completed per recipient at delivery (feedback/outbound.ts). */
  unsubscribe?: boolean;
}

/**
 * The envelope of a JSON message, from its header fields: each entry of from, to, cc, bcc and
 * reply_to is read as strictly as a From header (header-address.ts), and every address gets the
 * envelope syntax SMTP enforces (recipients: recipient-address.ts too). Any invalid entry is a
 * 422 naming it (`to[1]`), so nothing is sent to part of a list.
 */
export function envelopeOf(message: MessageRequest): { mailFrom: string; recipients: string[]; recipientFields: string[] } {
  const from = entryAddresses('from', message.from, 'sender');
  if (from.length !== 1) throw new ApiError(422, `from must name exactly one mailbox, not ${from.length}`, 'from');
  entries('reply_to', message.reply_to).forEach(([field, value]) => entryAddresses(field, value, 'reply'));
  const recipients = (['to', 'cc', 'bcc'] as const).flatMap((name) =>
    entries(name, message[name]).flatMap(([field, value]) =>
      entryAddresses(field, value, 'recipient').map((address) => ({ address, field })),
    ),
  );
  return { mailFrom: from[0]!, recipients: recipients.map((r) => r.address), recipientFields: recipients.map((r) => r.field) };
}

/** `[field, value]` per entry: `to` for a single string, `to[0]`, `to[1]`, … for a list. */
function entries(name: string, list: AddressList | undefined): [string, string][] {
  if (list === undefined) return [];
  return typeof list === 'string' ? [[name, list]] : list.map((value, i) => [`${name}[${i}]`, value]);
}

function entryAddresses(field: string, value: string, role: 'sender' | 'recipient' | 'reply'): string[] {
  const parsed = parseMailboxList(value);
  if ('error' in parsed) throw new ApiError(422, `${field} ${parsed.error}: ${JSON.stringify(value.slice(0, 100))}`, field);
  for (const address of parsed.addresses) {
    const refusal =
      checkEnvelopeAddress(address, role === 'sender' ? 'sender' : 'recipient') ??
      (role === 'recipient' ? checkRecipientAddress(address) : undefined);
    if (refusal) throw invalidAddress(field, refusal);
  }
  return parsed.addresses;
}

/** An address the request must not carry: 422 naming its field, with the reply SMTP would give. */
export function invalidAddress(field: string, refusal: SmtpReply): ApiError {
  return new ApiError(
    422,
    `${field}: ${refusal.message.replace(/^\d\.\d+\.\d+ /, '')}`,
    field,
    `${refusal.responseCode} ${refusal.message}`,
  );
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
    attachments: message.attachments?.map((a) => ({
      filename: a.filename,
      content: a.content,
      encoding: 'base64',
      contentType: a.content_type,
    })),
    // The pipeline reads and strips Idempotency-Key, as it does for SMTP clients that send one.
    headers: {
      ...message.headers,
      ...(idempotencyKey && { 'Idempotency-Key': idempotencyKey }),
      // Read and stripped by the pipeline like the header an SMTP client sends (submission/tags.ts).
      ...(message.tags?.length && { [TAG_HEADER]: message.tags.join(', ') }),
      ...(message.unsubscribe && { 'List-Unsubscribe-Post': ONE_CLICK }),
    },
  });
  return composer.compile().build();
}
