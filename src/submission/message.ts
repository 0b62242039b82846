/**
 * The cleanup step (Postfix's "cleanup"): line endings normalised to CRLF, the header block
 * read just enough for policy (From, Sender, Message-ID, Date; no MIME parse), and the trace
 * and missing headers added. Signing comes after this, on exactly these bytes.
 */
import { randomUUID } from 'node:crypto';
import { readHeader } from '../envelope/header.js';
import { reply } from './replies.js';
import { parseMailboxList } from './header-address.js';
import { traceToken } from './trace-text.js';

const CR = 0x0d;
const LF = 0x0a;

/**
 * Rewrites bare CR and bare LF as CRLF; returns the input itself when it has none. `before` and
 * `after` are the bytes either side of `input` when it is one chunk of a longer message.
 */
export function normaliseLineEndings(input: Buffer, before?: number, after?: number): Buffer {
  const last = input.length - 1;
  let bare = 0;
  for (let i = 0; i <= last; i++) {
    const c = input[i];
    if (c === CR) {
      if ((i < last ? input[i + 1] : after) !== LF) bare++;
    } else if (c === LF && (i > 0 ? input[i - 1] : before) !== CR) bare++;
  }
  if (bare === 0) return input;
  const out = Buffer.allocUnsafe(input.length + bare);
  let o = 0;
  for (let i = 0; i <= last; i++) {
    const c = input[i]!;
    if (c === LF && (i > 0 ? input[i - 1] : before) !== CR) out[o++] = CR;
    out[o++] = c;
    if (c === CR && (i < last ? input[i + 1] : after) !== LF) out[o++] = LF;
  }
  return out;
}

/** normaliseLineEndings() over a message in chunks, each chunk rewritten only if it has a bare CR or LF. */
export function normaliseChunks(chunks: Buffer[]): Buffer[] {
  const nonEmpty = chunks.filter((chunk) => chunk.length > 0);
  return nonEmpty.map((chunk, i) => normaliseLineEndings(chunk, nonEmpty[i - 1]?.at(-1), nonEmpty[i + 1]?.[0]));
}

/** Every mailbox of a From or Sender header, read strictly (header-address.ts), else 550 5.6.0. */
function headerAddresses(name: 'From' | 'Sender', value: string): string[] {
  const parsed = parseMailboxList(value);
  if ('addresses' in parsed) return parsed.addresses;
  throw reply(
    550,
    '5.6.0',
    `${name} header ${parsed.error}: ${printable(value.slice(0, 100))}`,
    name === 'From' ? 'header From' : 'header Sender',
  );
}

/** Header text as it can go into a reply line. */
const printable = (text: string) => text.replace(/[^\x20-\x7e]/g, '?');

export function rfc5322Date(at = new Date()): string {
  return at.toUTCString().replace(/GMT$/, '+0000');
}

export interface PreparedMessage {
  /** The message's head (MessageParts) with Relay's headers added, ready to sign with the rest of its body. */
  head: Buffer;
  messageId: string;
  /** Header From addresses (at least one) and Sender (required when From has several), for the sender policy. */
  from: string[];
  sender: string | undefined;
  /** The Reply-To fields' values, for the Reply-To policy (credential-policy.ts). */
  replyTo: string[];
}

export interface TraceInfo {
  queueId: string;
  hostname: string;
  heloName: string;
  clientAddress: string;
  clientHostname: string;
  tls: boolean;
}

/** The head of a message (MessageParts); throws an SmtpReply when the message cannot be accepted as it is. */
export function prepareMessage(rawHead: Buffer, trace: TraceInfo): PreparedMessage {
  const head = normaliseLineEndings(rawHead);
  const { fields } = readHeader(head);
  const field = (name: string) => fields.filter((f) => f.name === name);

  const fromFields = field('from');
  if (fromFields.length !== 1) {
    throw reply(550, '5.6.0', fromFields.length ? 'message has more than one From header' : 'message has no From header', 'header From');
  }
  const from = headerAddresses('From', fromFields[0]!.value);
  const senderFields = field('sender');
  if (senderFields.length > 1) throw reply(550, '5.6.0', 'message has more than one Sender header', 'header Sender');
  const senders = senderFields.length ? headerAddresses('Sender', senderFields[0]!.value) : [];
  if (senders.length > 1) throw reply(550, '5.6.0', `Sender header must name one mailbox, not ${senders.length}`, 'header Sender');
  // RFC 5322 3.6.2: with several authors, the Sender says which one sent it.
  if (from.length > 1 && senders.length === 0) {
    throw reply(550, '5.6.0', `From header names ${from.length} mailboxes: a Sender header is required`, 'header From');
  }
  const sender = senders[0];

  const added: string[] = [
    `Received: from ${traceToken(trace.heloName)} (${traceToken(trace.clientHostname)} [${traceToken(trace.clientAddress)}])\r\n` +
      `\tby ${trace.hostname} (Relay) with ${trace.tls ? 'ESMTPSA' : 'ESMTPA'} id ${trace.queueId};\r\n` +
      `\t${rfc5322Date()}`,
  ];
  let messageId = field('message-id')[0]?.value;
  if (!messageId) {
    messageId = `<${randomUUID()}@${trace.hostname}>`;
    added.push(`Message-ID: ${messageId}`);
  }
  if (field('date').length === 0) added.push(`Date: ${rfc5322Date()}`);

  return {
    head: Buffer.concat([Buffer.from(added.join('\r\n') + '\r\n'), head]),
    messageId,
    from,
    sender,
    replyTo: field('reply-to').map((f) => f.value),
  };
}
