/** `relay serve`: runs the relay until SIGINT or SIGTERM, then shuts it down cleanly. */
import type { Command } from 'commander';
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
      const relay = await startRelay(config, { logger: createLogger(config.log.level) });
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
    });
}
