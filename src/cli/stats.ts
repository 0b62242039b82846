/** `relay stats`: recipient counts by status and by recipient domain, and the queue depth. */
import type { Command } from 'commander';
import type { RecipientStatus } from '../queue/store.js';
import type { Cli } from './context.js';
import { formatTime, print, printJson, printTable } from './output.js';

const STATUSES: RecipientStatus[] = ['queued', 'deferred', 'delivered', 'bounced', 'expired', 'suppressed'];

const count = (n: number, noun: string) => `${n} ${noun}${n === 1 ? '' : 's'}`;

export function registerStatsCommand(program: Command, cli: Cli): void {
  program
    .command('stats')
    .description('recipient counts by status and by domain, and the queue depth')
    .option('--json', 'print JSON')
    .action((opts: { json?: boolean }) =>
      cli.withStore((store) => {
        const { byStatus, byDomain, queue } = store.stats();
        if (opts.json) {
          return printJson({
            by_status: byStatus,
            by_domain: byDomain,
            queue: { messages: queue.messages, recipients_pending: queue.recipientsPending, oldest_received_at: queue.oldestReceivedAt },
          });
        }
        const oldest = queue.oldestReceivedAt ? `, oldest received ${formatTime(queue.oldestReceivedAt)}` : '';
        print(`Queue: ${count(queue.messages, 'message')}, ${count(queue.recipientsPending, 'recipient')} pending${oldest}`);
        print();
        printTable(['STATUS', 'RECIPIENTS'], STATUSES.map((status) => [status, byStatus[status]]), '');
        print();
        printTable(
          ['DOMAIN', ...STATUSES.map((s) => s.toUpperCase())],
          Object.entries(byDomain)
            .sort(([a], [b]) => a.localeCompare(b))
            .map(([domain, counts]) => [domain, ...STATUSES.map((status) => counts[status] ?? 0)]),
          'No recipient domains yet.',
        );
      }),
    );
}
