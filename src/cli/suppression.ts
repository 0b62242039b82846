/**
 * `relay suppression ...`: addresses Relay will not send to. A hard bounce suppresses the address
 * for the credential that hit it; what the operator adds applies to every credential unless
 * `--credential` names one.
 */
import { Option, type Command } from 'commander';
import { addSuppression, removeSuppression } from '../bounces/suppressions.js';
import { SUPPRESSION_KINDS, suppressionKind, type SuppressionKind } from '../feedback/reasons.js';
import { type Cli } from './context.js';
import { formatTime, isoTime, print, printJson, printTable } from './output.js';

const scopeName = (credential: string | null) => credential ?? '(all)';

export function registerSuppressionCommands(program: Command, cli: Cli): void {
  const suppression = program.command('suppression').description('the suppression list');

  suppression
    .command('list')
    .description('list suppressed addresses')
    .option('--credential <name>', 'only the entries of this credential')
    .addOption(new Option('--reason <kind>', 'only the entries of this kind').choices(SUPPRESSION_KINDS))
    .option('--json', 'print JSON')
    .action((opts: { credential?: string; reason?: SuppressionKind; json?: boolean }) =>
      cli.withStorage(async (storage) => {
        const listed = await storage.suppressions.list(opts.credential === undefined ? {} : { credential: opts.credential });
        const entries = listed
          .filter((s) => opts.reason === undefined || suppressionKind(s.reason) === opts.reason)
          .map((s) => ({
            address: s.address,
            credential: s.credential,
            reason: s.reason,
            created: isoTime(s.createdAt),
          }));
        if (opts.json) return printJson(entries);
        printTable(
          ['ADDRESS', 'CREDENTIAL', 'ADDED', 'REASON'],
          entries.map((s) => [s.address, scopeName(s.credential), formatTime(s.created), s.reason]),
          'The suppression list is empty.',
        );
      }),
    );

  suppression
    .command('add <address>')
    .description('stop sending to an address')
    .option('--reason <text>', 'why (shown in `relay suppression list`)', 'added by operator')
    .option('--credential <name>', 'only for this credential (default: every credential)')
    .action((input: string, opts: { reason: string; credential?: string }) =>
      cli.withStorage(async (storage, _config, audit) => {
        const added = await addSuppression(storage, { address: input, reason: opts.reason, credential: opts.credential ?? null });
        await audit.record({
          actor: cli.actor(),
          action: 'suppression.add',
          target: added.address,
          change: { credential: added.credential, reason: opts.reason },
        });
        print(`Suppressed ${added.address}${added.credential === null ? '' : ` for ${added.credential}`}.`);
      }),
    );

  suppression
    .command('remove <address>')
    .description('allow sending to an address again')
    .option('--credential <name>', "remove that credential's entry instead of the one for every credential")
    .action((input: string, opts: { credential?: string }) =>
      cli.withStorage(async (storage, _config, audit) => {
        await removeSuppression(storage, input, opts.credential ?? null);
        await audit.record({
          actor: cli.actor(),
          action: 'suppression.remove',
          target: input.trim(),
          change: { credential: opts.credential ?? null },
        });
        print(`Removed ${input.trim()} from the suppression list.`);
      }),
    );
}
