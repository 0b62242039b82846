/** `relay events export`: a window of events as CSV or JSON Lines on stdout, streamed (src/exports). */
import { pipeline } from 'node:stream/promises';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { epochMs } from '../envelope/time.js';
import { EXPORT_FORMATS, exportEvents, type ExportFormat } from '../exports/events.js';
import { CliError, type Cli } from './context.js';

function time(text: string): number {
  const ms = epochMs(text);
  if (ms === undefined) throw new InvalidArgumentError('expected an ISO 8601 time or epoch milliseconds');
  return ms;
}

export function registerEventsExportCommand(events: Command, cli: Cli): void {
  events
    .command('export')
    .description('write the events of a window, with their tags, as CSV or JSON Lines to stdout')
    .requiredOption('--from <time>', 'ISO 8601 or epoch ms, inclusive', time)
    .option('--to <time>', 'ISO 8601 or epoch ms, exclusive (default: now)', time)
    .addOption(new Option('--format <format>', 'output format').choices(EXPORT_FORMATS).default('csv'))
    .option('--credential <name>', 'only events of messages this credential submitted')
    .action((opts: { from: number; to?: number; format: ExportFormat; credential?: string }) =>
      cli.withStorage(async (storage) => {
        const to = opts.to ?? Date.now();
        if (opts.from >= to) throw new CliError('--from must be before --to');
        try {
          await pipeline(exportEvents(storage.events, { from: opts.from, to, credential: opts.credential }, opts.format), process.stdout, {
            end: false,
          });
        } catch (err) {
          // The reader went away (`| head`): not a failure of the export (see main.ts).
          if (!process.stdout.destroyed) throw err;
        }
      }),
    );
}
