/**
 * The `relay` command line (bin/relay.js runs this). Exit status: 0 success, 1 an operational
 * error (printed as one line `relay: <message>`), 2 a usage or config error.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { ConfigError } from '../config/load.js';
import { registerAuditCommands } from './audit.js';
import { createCli } from './context.js';
import { registerCredentialCommands } from './credential.js';
import { registerDomainCommands } from './domain.js';
import { registerEventsCommand } from './events.js';
import { registerEventsExportCommand } from './events-export.js';
import { registerNodesCommand } from './nodes.js';
import { registerOperatorCommands } from './operator.js';
import { registerQueueCommands } from './queue.js';
import { registerSenderCommands } from './sender.js';
import { registerSecretsCommands } from './secrets.js';
import { registerServeCommand } from './serve.js';
import { registerShapingCommands } from './shaping.js';
import { registerStatsCommand } from './stats.js';
import { registerSuppressionCommands } from './suppression.js';
import { registerTemplateCommands } from './template.js';
import { registerWebhookCommands } from './webhook.js';

const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

// `relay ... | head`: once the reader has gone, the rest of the output has nowhere to go, and
// that is not a failure of the command; the command itself still runs to its end.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code !== 'EPIPE') throw err;
  process.stdout.destroy();
});

const program = new Command('relay')
  .description('Relay: self-hosted SMTP submission relay')
  .version(version)
  .option('--config <file>', 'config file (default: $RELAY_CONFIG, else ./relay.yaml, else ./relay.example.yaml)')
  // Set before adding commands so every subcommand inherits them.
  .exitOverride()
  .showHelpAfterError('(add --help for usage)');

const cli = createCli(program);
registerServeCommand(program, cli);
registerDomainCommands(program, cli);
registerCredentialCommands(program, cli);
registerSenderCommands(program, cli);
registerQueueCommands(program, cli);
registerEventsCommand(program, cli);
registerEventsExportCommand(
  program.commands.find((c) => c.name() === 'events')!,
  cli,
);
registerSuppressionCommands(program, cli);
registerStatsCommand(program, cli);
registerTemplateCommands(program, cli);
registerWebhookCommands(program, cli);
registerNodesCommand(program, cli);
registerOperatorCommands(program, cli);
registerAuditCommands(program, cli);
registerSecretsCommands(program, cli);
registerShapingCommands(program, cli);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  process.exitCode = exitStatus(err);
}

function exitStatus(err: unknown): number {
  // Commander has already printed its own message (or the help/version text).
  if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
  process.stderr.write(`relay: ${err instanceof Error ? err.message : String(err)}\n`);
  return err instanceof ConfigError ? 2 : 1;
}
