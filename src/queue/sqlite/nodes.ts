/**
 * Nodes on one SQLite file: the file lives on one host, so a live process under a name is one
 * whose pid still runs there and whose heartbeat is recent.
 */
import type { NodeRecord, NodeRegistry } from '../storage.js';
import { NodeNameInUseError } from '../storage.js';
import type { SqliteConnection } from './connection.js';

/** A heartbeat older than this means the process that wrote it is gone, whatever its pid. */
const STALE_MS = 2 * 60_000;

interface NodeRow {
  name: string;
  host: string;
  pid: number;
  started_at: number;
  heartbeat_at: number;
  leased: number;
}

function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export class SqliteNodes implements NodeRegistry {
  constructor(private readonly conn: SqliteConnection) {}

  async register(node: { name: string; host: string; pid: number; at: number }): Promise<void> {
    this.conn.writeNow(() => {
      const db = this.conn.db;
      const existing = db.prepare(`SELECT * FROM nodes WHERE name = ?`).get(node.name) as NodeRow | undefined;
      if (
        existing &&
        existing.pid !== node.pid &&
        existing.host === node.host &&
        node.at - existing.heartbeat_at < STALE_MS &&
        running(existing.pid)
      ) {
        throw new NodeNameInUseError(node.name, `pid ${existing.pid} on ${existing.host}`);
      }
      db.prepare(
        `INSERT INTO nodes (name, host, pid, started_at, heartbeat_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (name) DO UPDATE SET host = excluded.host, pid = excluded.pid, started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at`,
      ).run(node.name, node.host, node.pid, node.at, node.at);
    });
  }

  async heartbeat(name: string, at: number): Promise<void> {
    this.conn.writeNow(() => this.conn.db.prepare(`UPDATE nodes SET heartbeat_at = ? WHERE name = ?`).run(at, name));
  }

  async unregister(name: string): Promise<void> {
    this.conn.writeNow(() => this.conn.db.prepare(`DELETE FROM nodes WHERE name = ?`).run(name));
  }

  async list(now: number): Promise<NodeRecord[]> {
    const rows = this.conn.db
      .prepare(
        `SELECT n.*, (SELECT count(*) FROM recipients r WHERE r.lease_owner = n.name AND r.lease_until > ?) AS leased
         FROM nodes n ORDER BY n.name`,
      )
      .all(now) as NodeRow[];
    return rows.map((r) => ({
      name: r.name,
      host: r.host,
      pid: r.pid,
      startedAt: r.started_at,
      heartbeatAt: r.heartbeat_at,
      leased: r.leased,
    }));
  }
}
