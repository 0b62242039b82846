/** `relay serve`: runs the relay until SIGINT or SIGTERM, then shuts it down cleanly; SIGHUP reloads. */
import { availableParallelism } from 'node:os';
import type { Command } from 'commander';
import { rereadConfig } from '../config/load.js';
import { createLogger } from '../log.js';
import type { RunningRelay } from '../relay.js';
import type { Cli } from './context.js';
import { workerCount } from '../workers/messages.js';

export function registerServeCommand(program: Command, cli: Cli): void {
  program
    .command('serve')
    .description('run the submission listeners and the delivery loop')
    .action(async () => {
      const config = cli.config();
      const logger = createLogger(config.log.level, { redactRecipients: config.log.redact_recipients });
      // The handlers go in before the relay starts: its listeners accept connections before
      // startRelay() returns, and a signal without a handler would kill the process (SIGTERM
      // must drain and exit 0 whenever the listener answers). One that arrives during the start
      // takes effect once the relay is running.
      let relay: RunningRelay | undefined;
      let stopping = false;
      let reloadPending = false;
      const stop = (running: RunningRelay) =>
        running.stop().then(
          () => process.exit(0),
          (err: Error) => {
            process.stderr.write(`relay: shutdown failed: ${err.message}\n`);
            process.exit(1);
          },
        );
      const onSignal = () => {
        // A second signal while stopping means "now".
        if (stopping) process.exit(1);
        stopping = true;
        if (relay) void stop(relay);
      };
      // SIGHUP: re-read the config file and the certificate; a broken config keeps the running one.
      const reload = (running: RunningRelay) => {
        let next;
        try {
          next = rereadConfig(config);
        } catch (err) {
          logger.error({ err: (err as Error).message }, 'reload failed; keeping the running configuration');
          return;
        }
        running.reload(next).catch((err: Error) => logger.error({ err: err.message }, 'reload failed; keeping the running configuration'));
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      process.on('SIGHUP', () => {
        if (relay) reload(relay);
        else reloadPending = true;
      });

      // Imported here so the other commands do not load the whole server stack.
      const { startRelay } = await import('../relay.js');
      relay = await startRelay(config, { logger, workers: workerCount(config.workers, availableParallelism()) });
      if (stopping) void stop(relay);
      else if (reloadPending) reload(relay);
    });
}
