/**
 * The receiving side's mail, for the feedback tests: fixtures from test/fixtures/feedback filled
 * in from a message Relay really delivered, and a raw SMTP session that hands one to the
 * inbound listener the way a provider's MTA would (EHLO, STARTTLS, null sender).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { headerText } from '../../src/envelope/header.js';
import { rfc5322Date } from '../../src/submission/message.js';
import type { ReceivedMessage } from './sink.js';
import { RawSmtpClient, type Reply } from './smtp-client.js';

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'feedback');

/** The fixture with its placeholders filled in from `delivered` (the copy an MX got). */
export function feedbackFixture(name: string, delivered: ReceivedMessage, extra: Record<string, string> = {}): string {
  const headers = headerText(delivered.raw);
  const rcpt = delivered.rcptTo[0]!;
  const messageId = /^message-id:\s*(<[^>]+>)/im.exec(headers)?.[1] ?? '';
  const values: Record<string, string> = {
    RCPT: rcpt,
    RETURN_PATH: delivered.mailFrom,
    MESSAGE_ID: messageId,
    DATE: rfc5322Date(),
    ORIGINAL_HEADERS: `Return-Path: <${delivered.mailFrom}>\r\n${headers}\r\n`,
    ORIGINAL_HEADERS_WITHOUT_RETURN_PATH: `${headers}\r\n`,
    // Feedback loops redact the recipient: the To header and any other mention of it.
    ORIGINAL_HEADERS_REDACTED: `${headers.split(rcpt).join('redacted@redacted.invalid')}\r\n`,
    ...extra,
  };
  return readFileSync(path.join(FIXTURES, name), 'utf8').replace(/%([A-Z_]+)%/g, (whole, key: string) => values[key] ?? whole);
}

/** One message to the inbound listener over STARTTLS; the reply to the end of DATA (or the first refusal). */
export async function sendInbound(port: number, from: string, to: string[], message: string): Promise<Reply> {
  const { client, greeting } = await RawSmtpClient.connect(port, { implicitTls: false });
  try {
    if (greeting.code !== 220) return greeting;
    await client.command('EHLO mx.example.net');
    const tls = await client.starttls();
    if (tls.code !== 220) return tls;
    await client.command('EHLO mx.example.net');
    const mail = await client.command(`MAIL FROM:<${from}>`);
    if (mail.code !== 250) return mail;
    for (const rcpt of to) {
      const reply = await client.command(`RCPT TO:<${rcpt}>`);
      if (reply.code !== 250) return reply;
    }
    return await client.data(message.replace(/^\./gm, '..'));
  } finally {
    client.close();
  }
}
