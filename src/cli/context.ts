/**
 * What every command needs: the config (loaded on first use, so `--help` works without one)
 * and storage, opened per command and always closed again. The CLI works beside running
 * `relay serve` nodes because they share the database (the SQLite file in WAL mode, or
 * PostgreSQL), and they pick up what it changes.
 */
import { userInfo } from 'node:os';
import type { Command } from 'commander';
import { AuditTrail } from '../audit/trail.js';
import { loadConfig } from '../config/load.js';
import type { RelayConfig } from '../config/schema.js';
import { openStorage } from '../queue/open.js';
import type { Storage } from '../queue/storage.js';

/** An operator-facing failure: printed as one line `relay: <message>`, exit status 1. */
export class CliError extends Error {}

export interface Cli {
  config(): RelayConfig;
  /** Who the audit log names for this command: `cli:` and the OS user. */
  actor(): string;
  withStorage<T>(run: (storage: Storage, config: RelayConfig, audit: AuditTrail) => T | Promise<T>): Promise<T>;
}

function osUser(): string {
  try {
    return userInfo().username;
  } catch {
    return process.env.USER ?? `uid-${process.getuid?.() ?? 'unknown'}`;
  }
}

export function createCli(program: Command): Cli {
  let config: RelayConfig | undefined;
  const cli: Cli = {
    config: () => (config ??= loadConfig(program.opts<{ config?: string }>().config)),
    actor: () => `cli:${osUser()}`,
    async withStorage(run) {
      const loaded = cli.config();
      const storage = await openStorage(loaded);
      try {
        return await run(storage, loaded, new AuditTrail(storage.audit));
      } finally {
        await storage.close();
      }
    },
  };
  return cli;
}
