/** `relay queue ...`: messages with recipients still to deliver. */
import type { Command } from 'commander';
import { CliError, type Cli } from './context.js';
import { formatTime, isoTime, print, printJson, printTable } from './output.js';

export function registerQueueCommands(program: Command, cli: Cli): void {
  const queue = program.command('queue').description('the delivery queue');

  queue
    .command('list')
    .description('list messages that still have recipients to deliver')
    .option('--json', 'print JSON')
    .action((opts: { json?: boolean }) =>
      cli.withStorage(async (storage) => {
        const entries = await storage.queue.pending();
        if (opts.json) {
          return printJson(
            entries.map((m) => ({
              queue_id: m.queueId,
              message_id: m.messageId,
              credential: m.credential,
              mail_from: m.mailFrom,
              size: m.size,
              received_at: isoTime(m.receivedAt),
              recipients: m.recipients.map((r) => ({
                address: r.address,
                status: r.status,
                attempts: r.attempts,
                next_attempt_at: isoTime(r.nextAttemptAt),
                last_code: r.lastCode,
                last_response: r.lastResponse,
              })),
            })),
          );
        }
        printTable(
          ['QUEUE ID', 'FROM', 'RECIPIENT', 'STATUS', 'ATTEMPTS', 'NEXT ATTEMPT', 'LAST RESPONSE'],
          entries.flatMap((m) =>
            m.recipients.map((r) => [
              m.queueId,
              m.mailFrom || '<>',
              r.address,
              r.status,
              r.attempts,
              formatTime(r.nextAttemptAt),
              r.lastCode ? `${r.lastCode} ${r.lastResponse ?? ''}`.trim() : r.lastResponse,
            ]),
          ),
          'The queue is empty.',
        );
      }),
    );

  queue
    .command('retry <id>')
    .description("make a message's pending recipients due now")
    .action((id: string) =>
      cli.withStorage(async (storage) => {
        if (!(await storage.queue.retry(id))) throw new CliError(`no message with queue ID ${id} (see \`relay queue list\`)`);
        print(`Message ${id} will be retried now.`);
      }),
    );

  queue
    .command('delete <id>')
    .description('delete a message; its pending recipients are not delivered')
    .action((id: string) =>
      cli.withStorage(async (storage) => {
        if (!(await storage.queue.delete(id))) throw new CliError(`no message with queue ID ${id} (see \`relay queue list\`)`);
        print(`Deleted message ${id}.`);
      }),
    );
}
