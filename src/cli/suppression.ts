/** `relay suppression ...`: addresses Relay will not send to (hard bounces land here automatically). */
import type { Command } from 'commander';
import { CliError, type Cli } from './context.js';
import { formatTime, print, printJson, printTable } from './output.js';
import { emailAddress } from './validate.js';

export function registerSuppressionCommands(program: Command, cli: Cli): void {
  const suppression = program.command('suppression').description('the suppression list');

  suppression
    .command('list')
    .description('list suppressed addresses')
    .option('--json', 'print JSON')
    .action((opts: { json?: boolean }) =>
      cli.withStore((store) => {
        const entries = store.listSuppressions().map((s) => ({ address: s.address, reason: s.reason, created: s.createdAt }));
        if (opts.json) return printJson(entries);
        printTable(
          ['ADDRESS', 'ADDED', 'REASON'],
          entries.map((s) => [s.address, formatTime(s.created), s.reason]),
          'The suppression list is empty.',
        );
      }),
    );

  suppression
    .command('add <address>')
    .description('stop sending to an address')
    .option('--reason <text>', 'why (shown in `relay suppression list`)', 'added by operator')
    .action((input: string, opts: { reason: string }) =>
      cli.withStore((store) => {
        const address = emailAddress(input);
        if (!store.addSuppression(address, opts.reason)) throw new CliError(`${address} is already on the suppression list`);
        print(`Suppressed ${address}.`);
      }),
    );

  suppression
    .command('remove <address>')
    .description('allow sending to an address again')
    .action((input: string) =>
      cli.withStore((store) => {
        const address = emailAddress(input);
        if (!store.removeSuppression(address)) throw new CliError(`${address} is not on the suppression list`);
        print(`Removed ${address} from the suppression list.`);
      }),
    );
}
