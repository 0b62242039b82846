/**
 * Reads what arrives at the inbound listener with mailparser and says what it is: an RFC 3464
 * delivery status notification, an RFC 5965 feedback report (ARF), a bounce in one of the
 * non-standard formats (qmail, Exim, Gmail's and Yahoo's plain-text failure notices), an
 * auto-reply, or none of these. It also collects what ties a report to the original message:
 * return-path tokens, the Message-ID and Relay's queue id (from its Received line) in the quoted
 * original. Deciding what a report means for the recipient is apply.ts's job.
 */
import { simpleParser, type ParsedMail } from 'mailparser';
import { headerEndOf } from '../envelope/header.js';

export interface OriginalRef {
  messageId?: string;
  queueId?: string;
  /** Local-part tokens of b+TOKEN@return-path-domain addresses quoted in the report. */
  returnPathTokens: string[];
}

export interface ReportedRecipient {
  address: string;
  /** failed, delayed, delivered, relayed, expanded (RFC 3464 section 2.3.3). */
  action: string;
  status?: string;
  diagnostic?: string;
}

export type Report =
  | { kind: 'delivery-status'; recipients: ReportedRecipient[]; original: OriginalRef }
  | { kind: 'feedback-report'; feedbackType: string; originalRecipients: string[]; userAgent?: string; original: OriginalRef }
  /** A failure notice without a delivery-status part: what it says, and the addresses it mentions. */
  | { kind: 'bounce'; text: string; code?: number; addresses: string[]; original: OriginalRef }
  | { kind: 'auto-reply'; reason: string }
  | { kind: 'other' };

const QUOTED_TYPES = new Set([
  'message/rfc822',
  'text/rfc822-headers',
  'message/rfc822-headers',
  'message/global',
  'message/global-headers',
]);
const STATUS_TYPES = new Set(['message/delivery-status', 'message/global-delivery-status']);

/** Subjects and senders of failure notices that carry no machine-readable part. */
const BOUNCE_SUBJECT =
  /undeliver|delivery (status notification \(failure\)|failure|has failed|failed)|mail delivery (failed|subsystem)|failure notice|returned mail|returned to sender|could not be delivered|nondeliverable|rejected:/i;
const BOUNCE_SENDER = /^(mailer-daemon|postmaster|mail-daemon|mailerdaemon)@/i;
const AUTO_REPLY_SUBJECT =
  /^(auto(matic)?[ -]?(reply|response|antwort)|out of (the )?office|abwesenheit|absence|on vacation|i am (currently )?(away|out))/i;

export async function parseReport(raw: Buffer, returnPathDomain: string | undefined): Promise<Report> {
  const mail = await simpleParser(raw, { keepDeliveryStatus: true, skipHtmlToText: true, skipTextLinks: true, skipImageLinks: true });
  const contentType = mail.headers.get('content-type') as { value?: string; params?: Record<string, string> } | undefined;
  const reportType = contentType?.value === 'multipart/report' ? contentType.params?.['report-type']?.toLowerCase() : undefined;
  const parts = mail.attachments;
  // mailparser lists a quoted original as an attachment, except a message/rfc822 part marked
  // inline, which it takes apart: the body as sent (after the report's own header) covers that.
  const body = raw.toString('utf8', headerEndOf(raw));
  const quoted = [...parts.filter((p) => QUOTED_TYPES.has(p.contentType)).map((p) => p.content.toString('utf8')), body];
  const original = () => originalRef(quoted, returnPathDomain);

  const feedback = parts.find((p) => p.contentType === 'message/feedback-report');
  if (reportType === 'feedback-report' || feedback) {
    const fields = fieldGroups(feedback?.content.toString('utf8') ?? '')[0] ?? [];
    const value = (name: string) => fields.find((f) => f.name === name)?.value;
    return {
      kind: 'feedback-report',
      feedbackType: (value('feedback-type') ?? 'other').toLowerCase(),
      originalRecipients: fields.filter((f) => f.name === 'original-rcpt-to').map((f) => stripAddress(f.value)),
      userAgent: value('user-agent'),
      original: original(),
    };
  }

  const status = parts.find((p) => STATUS_TYPES.has(p.contentType));
  if (status) {
    const groups = fieldGroups(status.content.toString('utf8'));
    const recipients = groups.flatMap((group): ReportedRecipient[] => {
      const value = (name: string) => group.find((f) => f.name === name)?.value;
      const recipient = value('final-recipient') ?? value('original-recipient');
      if (!recipient) return [];
      return [
        {
          address: stripAddress(recipient.replace(/^[a-z0-9-]+;\s*/i, '')),
          action: (value('action') ?? '').toLowerCase(),
          status: value('status'),
          diagnostic: value('diagnostic-code')?.replace(/^[a-z0-9-]+;\s*/i, ''),
        },
      ];
    });
    return { kind: 'delivery-status', recipients, original: original() };
  }

  const autoReply = autoReplyReason(mail);
  const from = mail.from?.value[0]?.address ?? '';
  const text = mail.text ?? '';
  if (!autoReply && (BOUNCE_SENDER.test(from) || BOUNCE_SUBJECT.test(mail.subject ?? '') || reportType === 'delivery-status')) {
    return { kind: 'bounce', ...bounceText(text), addresses: addressesIn(text), original: original() };
  }
  if (autoReply) return { kind: 'auto-reply', reason: autoReply };
  return { kind: 'other' };
}

/** RFC 3834 Auto-Submitted, the de facto headers of vacation programs, and their subjects. */
function autoReplyReason(mail: ParsedMail): string | undefined {
  const header = (name: string) => {
    const value = mail.headers.get(name);
    return typeof value === 'string' ? value.toLowerCase() : undefined;
  };
  const autoSubmitted = header('auto-submitted');
  if (autoSubmitted && autoSubmitted !== 'no') return `Auto-Submitted: ${autoSubmitted}`;
  for (const name of ['x-autoreply', 'x-autorespond', 'x-auto-response-suppress']) if (header(name) !== undefined) return name;
  const precedence = header('precedence');
  if (precedence === 'auto_reply' || precedence === 'auto-reply') return `Precedence: ${precedence}`;
  if (AUTO_REPLY_SUBJECT.test(mail.subject ?? '')) return 'subject';
  return undefined;
}

/**
 * What a plain-text failure notice says about the recipient: the paragraph after the first
 * "<address>:" line (qmail, Yahoo, Exim) before the quoted original, its SMTP reply code if it
 * quotes one.
 */
function bounceText(text: string): { text: string; code?: number } {
  const notice = text.split(
    /^(?:-{2,}.*(?:copy of the message|original message|message follows|message headers).*|Return-Path:.*|Received:.*)$/im,
  )[0]!;
  const paragraph = /<[^<>\s]+@[^<>\s]+>:?[ \t]*\r?\n((?:[^\r\n]+(?:\r?\n|$))+)/.exec(notice)?.[1];
  const source = (paragraph ?? notice)
    .replace(/\s+/g, ' ')
    .trim()
    .replace(/^([45]\d\d):\s/, '$1 ');
  const code = /\b([45]\d\d)(?=[ -]|$)/.exec(source)?.[1];
  return { text: source.slice(0, 500), ...(code && { code: Number(code) }) };
}

function addressesIn(text: string): string[] {
  return [...new Set([...text.matchAll(/<?([^\s<>"():;,]+@[a-z0-9.-]+\.[a-z]{2,63})>?/gi)].map((m) => m[1]!.toLowerCase()))];
}

function originalRef(texts: string[], returnPathDomain: string | undefined): OriginalRef {
  const all = texts.join('\r\n');
  const messageId = /^message-id:\s*(<[^>\s]+>)/im.exec(all)?.[1];
  const queueId = /\(Relay\) with E?SMTPS?A? id ([0-9A-Z]{8,40})\b/.exec(all)?.[1];
  const tokens = returnPathDomain
    ? [...all.matchAll(new RegExp(`\\bb\\+([0-9a-z-]+)@${returnPathDomain.replace(/\./g, '\\.')}\\b`, 'gi'))].map((m) => m[1]!)
    : [];
  return {
    ...(messageId && { messageId }),
    ...(queueId && { queueId }),
    returnPathTokens: [...new Set(tokens.map((t) => t.toLowerCase()))],
  };
}

interface Field {
  name: string;
  value: string;
}

/** Header-style field groups separated by blank lines (the per-message and per-recipient blocks of RFC 3464). */
function fieldGroups(text: string): Field[][] {
  const groups: Field[][] = [];
  let group: Field[] = [];
  for (const line of text.split(/\r?\n/)) {
    if (line.trim() === '') {
      if (group.length) groups.push(group);
      group = [];
    } else if (/^[ \t]/.test(line) && group.length) {
      group[group.length - 1]!.value += ` ${line.trim()}`;
    } else {
      const colon = line.indexOf(':');
      if (colon > 0) group.push({ name: line.slice(0, colon).trim().toLowerCase(), value: line.slice(colon + 1).trim() });
    }
  }
  if (group.length) groups.push(group);
  return groups;
}

/** "rfc822; <a@b>" or "<a@b>" or "a@b" → "a@b". */
function stripAddress(value: string): string {
  const text = value.replace(/^rfc822;\s*/i, '').trim();
  return (/<([^>]*)>/.exec(text)?.[1] ?? text).trim();
}
