/** `relay events`: the delivery log, one row per recipient state change. */
import { Option, type Command } from 'commander';
import type { RecipientStatus } from '../queue/store.js';
import type { Cli } from './context.js';
import { formatTime, printJson, printTable } from './output.js';
import { positiveInteger } from './validate.js';

const STATUSES: RecipientStatus[] = ['queued', 'delivered', 'deferred', 'bounced', 'expired', 'suppressed'];

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
      cli.withStore((store) => {
        const events = store.events({ recipient: opts.recipient, status: opts.status, queueId: opts.queueId, limit: opts.limit });
        if (opts.json) return printJson(events);
        printTable(
          ['AT', 'STATUS', 'RECIPIENT', 'QUEUE ID', 'CODE', 'RESPONSE'],
          events.map((e) => [formatTime(e.at), e.status, e.recipient, e.queue_id, e.smtp_code, e.response]),
          'No events.',
        );
      }),
    );
}
