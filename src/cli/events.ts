/** `relay events`: the delivery log, one row per recipient state change. */
import { Option, type Command } from 'commander';
import { EVENT_STATUSES, type EventRecord, type RecipientStatus } from '../queue/storage.js';
import type { Cli } from './context.js';
import { formatTime, isoTime, printJson, printTable } from './output.js';
import { positiveInteger } from './validate.js';

const STATUSES = [...EVENT_STATUSES];
const PAGE = 1000;

interface EventOptions {
  json?: boolean;
  recipient?: string;
  status?: RecipientStatus;
  queueId?: string;
  limit?: number;
}

export function registerEventsCommand(program: Command, cli: Cli): void {
  program
    .command('events')
    .description('show delivery events, oldest first')
    .option('--recipient <address>', 'only events for this recipient')
    .addOption(new Option('--status <status>', 'only events with this status').choices(STATUSES))
    .option('--queue-id <id>', 'only events for this message')
    .option('--limit <n>', 'at most this many events', positiveInteger)
    .option('--json', 'print JSON')
    .action((opts: EventOptions) =>
      cli.withStorage(async (storage) => {
        const events: EventRecord[] = [];
        const wanted = opts.limit ?? Infinity;
        for (;;) {
          const page = await storage.events.query({
            afterId: events.at(-1)?.id,
            recipient: opts.recipient,
            status: opts.status,
            queueId: opts.queueId,
            limit: Math.min(PAGE, wanted - events.length),
          });
          events.push(...page);
          if (page.length < PAGE || events.length >= wanted) break;
        }
        if (opts.json) {
          return printJson(
            events.map((e) => ({
              id: e.id,
              queue_id: e.queueId,
              message_id: e.messageId,
              credential: e.credential,
              recipient: e.recipient,
              status: e.status,
              smtp_code: e.smtpCode,
              response: e.response,
              category: e.category,
              tls: e.tls ?? null,
              at: isoTime(e.at),
              ...(e.phase && { phase: e.phase }),
            })),
          );
        }
        printTable(
          ['AT', 'STATUS', 'RECIPIENT', 'QUEUE ID', 'CODE', 'TLS', 'RESPONSE'],
          events.map((e) => [
            formatTime(e.at),
            e.phase ? `${e.status} (${e.phase})` : e.status,
            e.recipient,
            e.queueId,
            e.smtpCode,
            tlsSummary(e.tls),
            e.response,
          ]),
          'No events.',
        );
      }),
    );
}

/** "TLSv1.3 sts verified", "cleartext", or empty for events without a session. */
function tlsSummary(tls: EventRecord['tls']): string {
  if (!tls) return '';
  if (!tls.version) return tls.policy === 'none' ? 'cleartext' : `cleartext ${tls.policy}`;
  return [tls.version, tls.policy === 'none' ? '' : tls.policy, tls.verified ? 'verified' : 'unverified'].filter(Boolean).join(' ');
}
