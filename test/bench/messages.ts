/**
 * Benchmark messages: a plain-text message of about the given size from the bench sender,
 * to recipients spread over a few domains (all served by the sink). Each has its own
 * Message-ID and Date, as an application would send it; the body is shared, so generating
 * messages costs the load generator almost nothing.
 */
import { randomUUID } from 'node:crypto';
import type { MessageSource } from './load.js';

export const SENDER_DOMAIN = 'bench.test';
export const RECIPIENT_DOMAINS = ['dest0.test', 'dest1.test', 'dest2.test', 'dest3.test'];

export function messageSource(sizeBytes: number): MessageSource {
  const line = 'The quick brown fox jumps over the lazy dog, and then it reads its mail again.\r\n';
  const body = Buffer.from(line.repeat(Math.max(1, Math.ceil((sizeBytes - 300) / line.length))));
  const from = `app@${SENDER_DOMAIN}`;
  // Unique across sources too: the relay treats a repeated Message-ID as a duplicate submission.
  const run = randomUUID();
  let sent = 0;
  const date = new Date().toUTCString().replace(/GMT$/, '+0000');
  return {
    from,
    next() {
      const i = sent++;
      const to = `user${i % 1000}@${RECIPIENT_DOMAINS[i % RECIPIENT_DOMAINS.length]}`;
      const header =
        `From: Bench App <${from}>\r\nTo: <${to}>\r\nSubject: Benchmark message ${i}\r\n` +
        `Message-ID: <${i}.${run}@${SENDER_DOMAIN}>\r\nDate: ${date}\r\nMIME-Version: 1.0\r\n` +
        `Content-Type: text/plain; charset=us-ascii\r\n\r\n`;
      return { to, raw: Buffer.concat([Buffer.from(header), body]) };
    },
  };
}
