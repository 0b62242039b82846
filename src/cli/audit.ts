/** `relay audit`: who changed what, from the hash-chained audit log; `relay audit verify` checks the chain. */
import { InvalidArgumentError, type Command } from 'commander';
import { verifyChain } from '../audit/chain.js';
import { auditView } from '../audit/trail.js';
import { parseDuration } from '../config/duration.js';
import type { AuditEntry } from '../queue/storage.js';
import type { Cli } from './context.js';
import { formatTime, print, printJson, printTable } from './output.js';

const PAGE = 1000;

/** An ISO 8601 time, or a duration meaning that long ago (24h, 7d). */
function since(input: string): number {
  if (/^\d+(\.\d+)?\s*(ms|s|m|h|d)$/.test(input.trim())) return Date.now() - parseDuration(input);
  const at = Date.parse(input);
  if (Number.isNaN(at)) throw new InvalidArgumentError('expected an ISO 8601 time (2026-11-27T10:00:00Z) or a duration ago (24h, 7d)');
  return at;
}

export function registerAuditCommands(program: Command, cli: Cli): void {
  const audit = program
    .command('audit')
    .description('list management actions (who, what, target, change), oldest first')
    .option('--since <time>', 'only actions since this time (ISO 8601) or this long ago (24h, 7d)', since)
    .option('--actor <actor>', 'only actions by this actor (e.g. cli:alice, admin-token)')
    .option('--json', 'print JSON')
    .action((opts: { since?: number; actor?: string; json?: boolean }) =>
      cli.withStorage(async (storage) => {
        const entries: AuditEntry[] = [];
        for (;;) {
          const page = await storage.audit.list({ afterSeq: entries.at(-1)?.seq, since: opts.since, actor: opts.actor, limit: PAGE });
          entries.push(...page);
          if (page.length < PAGE) break;
        }
        if (opts.json) return printJson(entries.map(auditView));
        printTable(
          ['SEQ', 'AT', 'ACTOR', 'ACTION', 'TARGET', 'CHANGE'],
          entries.map((e) => [e.seq, formatTime(e.at), e.actor, e.action, e.target, e.change === '{}' ? null : e.change]),
          'No audited actions.',
        );
      }),
    );

  audit
    .command('verify')
    .description('check the hash chain of the audit log; exit 1 naming the first row that was edited, deleted or reordered')
    .option('--json', 'print JSON')
    // `audit` itself takes --json too, and takes it also when written after `verify`.
    .action((_opts: unknown, command: Command) =>
      cli.withStorage(async (storage) => {
        const opts = command.optsWithGlobals<{ json?: boolean }>();
        const check = await verifyChain(storage.audit);
        if (!check.ok) process.exitCode = 1;
        if (opts.json) return printJson(check);
        if (check.ok) {
          print(`Audit log intact: ${check.rows} rows, head hash ${check.head || '(empty)'}.`);
          print('Keep the head hash elsewhere: removing the newest rows leaves a shorter chain that still verifies.');
        } else {
          process.stderr.write(`relay: audit log broken at row ${check.seq}: ${check.message} (${check.rows} rows before it verify)\n`);
        }
      }),
    );
}
