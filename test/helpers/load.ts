/**
 * Load for the crash test and the soak script: client apps submitting numbered messages over
 * pooled connections, retrying after any failure that is not a refusal (as an app would while
 * the relay restarts), and a tally of what reached the sink. A message counts as acknowledged
 * only when it got a 250.
 */
import nodemailer from 'nodemailer';
import type { Sink } from './sink.js';

export interface LoadOptions {
  port: number;
  creds: { username: string; password: string };
  /** Concurrent client apps, each with its own pooled connection. */
  clients: number;
  /** Stop after this many messages in all… */
  messages?: number;
  /** …or when this says so (checked before each message). */
  stop?: () => boolean;
  /** Approximate body size in bytes. */
  bodyBytes?: number;
  /** Message-IDs are <PREFIX-N@acme.test>. */
  prefix: string;
}

export interface LoadReport {
  /** Message-ID → the queue id of the 250. */
  acknowledged: Map<string, string>;
  /** Submissions that failed and were retried (connection lost, 4xx). */
  retries: number;
  /** 5xx refusals, which should never happen here. */
  refused: string[];
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function submitLoad(options: LoadOptions): Promise<LoadReport> {
  const report: LoadReport = { acknowledged: new Map(), retries: 0, refused: [] };
  const body = 'The quick brown fox jumps over the lazy dog.\r\n'.repeat(Math.max(1, Math.round((options.bodyBytes ?? 500) / 46)));
  let next = 0;
  const client = async (n: number) => {
    const transport = nodemailer.createTransport({
      host: '127.0.0.1',
      port: options.port,
      secure: true,
      pool: true,
      maxConnections: 1,
      auth: { user: options.creds.username, pass: options.creds.password },
      tls: { rejectUnauthorized: false },
      connectionTimeout: 5000,
      greetingTimeout: 5000,
      socketTimeout: 15_000,
    });
    transport.on('error', () => {});
    try {
      for (;;) {
        if (options.stop?.() || (options.messages !== undefined && next >= options.messages)) return;
        const messageId = `<${options.prefix}-${next++}@acme.test>`;
        for (;;) {
          try {
            const info = await transport.sendMail({
              from: 'app@acme.test',
              to: `rcpt${n}@example.net`,
              subject: messageId,
              messageId,
              text: body,
            });
            report.acknowledged.set(messageId, /queued as (\S+)/.exec(info.response)?.[1] ?? '');
            break;
          } catch (err) {
            const code = (err as { responseCode?: number }).responseCode ?? 0;
            if (code >= 500) {
              report.refused.push(`${messageId}: ${(err as Error).message}`);
              break;
            }
            report.retries++;
            await sleep(50 + Math.random() * 100);
          }
        }
      }
    } finally {
      transport.close();
    }
  };
  await Promise.all(Array.from({ length: options.clients }, (_, n) => client(n)));
  return report;
}

export interface SinkTally {
  /** Message-ID → the relay queue ids it arrived under, one per delivery. */
  deliveries: Map<string, string[]>;
}

/**
 * Reads Message-ID and Relay's queue id (from its Received header) of every message at the
 * sink, added to `into` when given; `clear` then empties the sink's list (long runs).
 */
export function tallySink(sink: Sink, options: { into?: SinkTally; clear?: boolean } = {}): SinkTally {
  const deliveries = options.into?.deliveries ?? new Map<string, string[]>();
  for (const message of sink.messages) {
    const head = message.raw.toString('latin1', 0, Math.min(message.raw.length, 4000));
    const messageId = /^Message-ID: (\S+)/im.exec(head)?.[1];
    const queueId = /with ESMTPS?A id (\S+);/.exec(head)?.[1] ?? '';
    if (!messageId) continue;
    const list = deliveries.get(messageId) ?? [];
    list.push(queueId);
    deliveries.set(messageId, list);
  }
  if (options.clear) sink.messages.length = 0;
  return { deliveries };
}

/** Lost: acknowledged but never delivered. Duplicates: extra deliveries, split by cause. */
export function compare(report: LoadReport, tally: SinkTally) {
  const lost = [...report.acknowledged.keys()].filter((id) => !tally.deliveries.has(id));
  let sameQueueId = 0;
  let resubmitted = 0;
  for (const queueIds of tally.deliveries.values()) {
    const distinct = new Set(queueIds).size;
    sameQueueId += queueIds.length - distinct;
    resubmitted += distinct - 1;
  }
  return { lost, relayDuplicates: sameQueueId, resubmissionDuplicates: resubmitted };
}
