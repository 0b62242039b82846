/** `relay stats`: recipient counts by status and by recipient domain, the queue depth, and each credential's usage against its quotas. */
import type { Command } from 'commander';
import { EVENT_STATUSES } from '../queue/storage.js';
import type { RecipientStatus, Storage } from '../queue/storage.js';
import type { Cli } from './context.js';
import { limitsView } from '../submission/credentials.js';
import { usedOf } from './credential-limits.js';
import { formatTime, isoTime, print, printJson, printTable } from './output.js';

const STATUSES = EVENT_STATUSES;

const count = (n: number, noun: string) => `${n} ${noun}${n === 1 ? '' : 's'}`;

export function registerStatsCommand(program: Command, cli: Cli): void {
  program
    .command('stats')
    .description('recipient counts by status and by domain, and the queue depth')
    .option('--tag <tag>', 'only messages carrying this tag: event counts by status and by domain')
    .option('--json', 'print JSON')
    .action((opts: { json?: boolean; tag?: string }) =>
      cli.withStorage(async (storage) => {
        if (opts.tag !== undefined) return printTagStats(storage, opts.tag, opts.json);
        const { byStatus, byDomain, queue } = await storage.queue.stats();
        const credentials = Object.fromEntries(
          await Promise.all((await storage.credentials.list()).map(async (c) => [c.name, await limitsView(storage, c.name)] as const)),
        );
        if (opts.json) {
          return printJson({
            by_status: byStatus,
            by_domain: byDomain,
            queue: {
              messages: queue.messages,
              recipients_pending: queue.recipientsPending,
              oldest_received_at: isoTime(queue.oldestReceivedAt),
            },
            credentials,
          });
        }
        const oldest = queue.oldestReceivedAt ? `, oldest received ${formatTime(queue.oldestReceivedAt)}` : '';
        print(`Queue: ${count(queue.messages, 'message')}, ${count(queue.recipientsPending, 'recipient')} pending${oldest}`);
        printByStatusAndDomain('RECIPIENTS', byStatus, byDomain, 'No recipient domains yet.');
        print();
        printTable(
          ['CREDENTIAL', 'RATE', 'TODAY', 'THIS MONTH'],
          Object.entries(credentials).map(([name, { limits, usage }]) => [
            name,
            limits.rate,
            usedOf(usage.today, limits.daily),
            usedOf(usage.this_month, limits.monthly),
          ]),
          'No credentials yet.',
        );
      }),
    );
}

/** Events of the messages carrying `tag`, over the whole event log, counted by status and by recipient domain. */
async function printTagStats(storage: Storage, tag: string, json?: boolean): Promise<void> {
  const now = Date.now();
  const byStatus = Object.fromEntries(STATUSES.map((s) => [s, 0])) as Record<RecipientStatus, number>;
  const byDomain: Record<string, Partial<Record<RecipientStatus, number>>> = {};
  for (const row of await storage.events.buckets(0, now + 1, now + 1, undefined, tag)) {
    byStatus[row.status] += row.count;
    const counts = (byDomain[row.domain] ??= {});
    counts[row.status] = (counts[row.status] ?? 0) + row.count;
  }
  if (json) return printJson({ tag, by_status: byStatus, by_domain: byDomain });
  print(`Events of messages tagged ${tag}:`);
  printByStatusAndDomain('EVENTS', byStatus, byDomain, `No events with tag ${tag}.`);
}

/** A blank line, the counts by status, a blank line, then the counts by domain (one column per status). */
function printByStatusAndDomain(
  counted: string,
  byStatus: Record<RecipientStatus, number>,
  byDomain: Record<string, Partial<Record<RecipientStatus, number>>>,
  noDomains: string,
): void {
  print();
  printTable(
    ['STATUS', counted],
    STATUSES.map((status) => [status, byStatus[status]]),
    '',
  );
  print();
  printTable(
    ['DOMAIN', ...STATUSES.map((s) => s.toUpperCase())],
    Object.entries(byDomain)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([domain, counts]) => [domain, ...STATUSES.map((status) => counts[status] ?? 0)]),
    noDomains,
  );
}
