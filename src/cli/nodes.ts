/** `relay nodes`: the relay nodes sharing this database, their last heartbeat and the recipients each holds leased. */
import type { Command } from 'commander';
import type { Cli } from './context.js';
import { formatTime, isoTime, printJson, printTable } from './output.js';

export function registerNodesCommand(program: Command, cli: Cli): void {
  program
    .command('nodes')
    .description('list the relay nodes using this database')
    .option('--json', 'print JSON')
    .action((opts: { json?: boolean }) =>
      cli.withStorage(async (storage, config) => {
        const now = Date.now();
        const nodes = (await storage.nodes.list(now)).map((n) => ({
          name: n.name,
          host: n.host,
          pid: n.pid,
          started_at: isoTime(n.startedAt),
          heartbeat_at: isoTime(n.heartbeatAt),
          // Two missed heartbeats (a third of the lease each) and its leases are about to lapse.
          alive: now - n.heartbeatAt < config.delivery.lease,
          leased: n.leased,
        }));
        if (opts.json) return printJson(nodes);
        printTable(
          ['NODE', 'HOST', 'PID', 'STARTED', 'LAST HEARTBEAT', 'ALIVE', 'LEASED'],
          nodes.map((n) => [n.name, n.host, n.pid, formatTime(n.started_at), formatTime(n.heartbeat_at), n.alive ? 'yes' : 'no', n.leased]),
          'No relay is running on this database.',
        );
      }),
    );
}
