/**
 * What every command needs: the config (loaded on first use, so `--help` works without one)
 * and the store, opened per command and always closed again. The CLI works beside a running
 * `relay serve` because both open the same SQLite file in WAL mode.
 */
import type { Command } from 'commander';
import { loadConfig } from '../config/load.js';
import type { RelayConfig } from '../config/schema.js';
import { openStore } from '../queue/sqlite.js';
import type { Store } from '../queue/store.js';

/** An operator-facing failure: printed as one line `relay: <message>`, exit status 1. */
export class CliError extends Error {}

export interface Cli {
  config(): RelayConfig;
  withStore<T>(run: (store: Store, config: RelayConfig) => T | Promise<T>): Promise<T>;
}

export function createCli(program: Command): Cli {
  let config: RelayConfig | undefined;
  const cli: Cli = {
    config: () => (config ??= loadConfig(program.opts<{ config?: string }>().config)),
    async withStore(run) {
      const loaded = cli.config();
      const store = openStore(loaded);
      try {
        return await run(store, loaded);
      } finally {
        store.close();
      }
    },
  };
  return cli;
}
