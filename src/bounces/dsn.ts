/**
 * Bounce notifications: RFC 3464 delivery status notifications, sent from MAILER-DAEMON to a
 * message's envelope sender. A multipart/report with a text part for people, a
 * message/delivery-status part per failed recipient for software, and the original headers
 * as text/rfc822-headers (never the body). CRLF line endings throughout.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { headerText } from '../envelope/header.js';
import { enhancedStatusOf } from './classify.js';
import { rfc5322Date } from '../submission/message.js';

export interface FailedRecipient {
  address: string;
  status: 'bounced' | 'expired';
  /** Set when the reply came from an SMTP server; absent for DNS and connection failures. */
  smtpCode?: number;
  response?: string;
}

export interface DsnInput {
  hostname: string;
  /** The original message. */
  queueId: string;
  mailFrom: string;
  receivedAt: number;
  /** The original message, or its header block: only the header is returned. */
  message: Buffer;
  recipients: FailedRecipient[];
  now?: Date;
}

export interface Dsn {
  messageId: string;
  body: Buffer;
}

const CRLF = '\r\n';

export function buildDsn(input: DsnInput): Dsn {
  const now = input.now ?? new Date();
  const messageId = `<${randomUUID()}@${input.hostname}>`;
  const boundary = `=_relay_${randomBytes(12).toString('hex')}`;
  const header = [
    `From: Mail Delivery System <MAILER-DAEMON@${input.hostname}>`,
    `To: <${input.mailFrom}>`,
    'Subject: Undelivered Mail Returned to Sender',
    `Date: ${rfc5322Date(now)}`,
    `Message-ID: ${messageId}`,
    'Auto-Submitted: auto-replied',
    'MIME-Version: 1.0',
    `Content-Type: multipart/report; report-type=delivery-status; boundary="${boundary}"`,
  ];
  const parts = [
    ['Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: 8bit', '', ...explanation(input)],
    ['Content-Type: message/delivery-status', '', ...deliveryStatus(input, now)],
    ['Content-Type: text/rfc822-headers', '', headerText(input.message)],
  ];
  const text = [
    ...header,
    '',
    'This is a MIME-encapsulated delivery status notification.',
    ...parts.flatMap((part) => ['', `--${boundary}`, ...part]),
    '',
    `--${boundary}--`,
    '',
  ].join(CRLF);
  return { messageId, body: Buffer.from(text, 'utf8') };
}

function explanation(input: DsnInput): string[] {
  return [
    `This is the mail system at ${input.hostname}.`,
    '',
    'Your message could not be delivered to one or more recipients.',
    'Its headers are attached below.',
    '',
    ...input.recipients.map((r) =>
      r.status === 'expired'
        ? `<${r.address}>: gave up after retrying for too long; last error: ${r.response ?? 'none'}`
        : `<${r.address}>: ${r.response ?? 'delivery failed'}`,
    ),
  ];
}

function deliveryStatus(input: DsnInput, now: Date): string[] {
  const perMessage = [
    `Reporting-MTA: dns; ${input.hostname}`,
    `X-Relay-Queue-ID: ${input.queueId}`,
    `Arrival-Date: ${rfc5322Date(new Date(input.receivedAt))}`,
  ];
  const perRecipient = input.recipients.flatMap((r) => [
    '',
    `Final-Recipient: rfc822; ${r.address}`,
    'Action: failed',
    `Status: ${statusOf(r)}`,
    ...(r.response ? [fold(`Diagnostic-Code: ${r.smtpCode ? 'smtp' : 'X-Relay'}; ${r.response}`)] : []),
    `Last-Attempt-Date: ${rfc5322Date(now)}`,
  ]);
  return [...perMessage, ...perRecipient];
}

/** A bounce carries the reply's enhanced code; an expiry is X.4.7, "delivery time expired". */
function statusOf(r: FailedRecipient): string {
  if (r.status === 'expired') return '4.4.7';
  const status = r.response ? enhancedStatusOf(r.response) : undefined;
  return status?.startsWith('5.') ? status : '5.0.0';
}

/** Folds a header field at spaces so lines stay near 78 characters (RFC 5322 section 2.2.3). */
function fold(field: string): string {
  const words = field.split(' ');
  const lines: string[] = [];
  let line = words.shift()!;
  for (const word of words) {
    if (line.length + 1 + word.length > 78) {
      lines.push(line);
      line = ` ${word}`;
    } else line += ` ${word}`;
  }
  lines.push(line);
  return lines.join(CRLF);
}
