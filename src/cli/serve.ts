/** `relay serve`: runs the relay until SIGINT or SIGTERM, then shuts it down cleanly; SIGHUP reloads. */
import type { Command } from 'commander';
import { loadConfig } from '../config/load.js';
import { createLogger } from '../log.js';
import type { Cli } from './context.js';

export function registerServeCommand(program: Command, cli: Cli): void {
  program
    .command('serve')
    .description('run the submission listeners and the delivery loop')
    .action(async () => {
      const config = cli.config();
      // Imported here so the other commands do not load the whole server stack.
      const { startRelay } = await import('../relay.js');
      const logger = createLogger(config.log.level, { redactRecipients: config.log.redact_recipients });
      const relay = await startRelay(config, { logger });
      let stopping = false;
      const onSignal = () => {
        // A second signal while stopping means "now".
        if (stopping) process.exit(1);
        stopping = true;
        relay.stop().then(
          () => process.exit(0),
          (err: Error) => {
            process.stderr.write(`relay: shutdown failed: ${err.message}\n`);
            process.exit(1);
          },
        );
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      // SIGHUP: re-read the config file and the certificate; a broken config keeps the running one.
      process.on('SIGHUP', () => {
        let next;
        try {
          next = loadConfig(config.source === '(embedded default)' ? undefined : config.source);
        } catch (err) {
          logger.error({ err: (err as Error).message }, 'reload failed; keeping the running configuration');
          return;
        }
        relay.reload(next).catch((err: Error) => logger.error({ err: err.message }, 'reload failed; keeping the running configuration'));
      });
    });
}
