/**
 * Nodes sharing the database. A node's name is held by a session advisory lock on a connection
 * of its own (outside the pool) for as long as the node runs: PostgreSQL drops the lock when
 * that session ends, cleanly or not, so a name is "in use" exactly while its process is alive
 * and connected, whatever the nodes table says.
 */
import pg from 'pg';
import type { Logger } from 'pino';
import { NodeNameInUseError, type NodeRecord, type NodeRegistry } from '../storage.js';
import { connectionConfig, type Db } from './db.js';
import { toNode, type NodeRow } from './rows.js';

const lockKey = (name: string) => ['relay-node:' + name];
const LOCK = `hashtextextended($1, 0)`;
const LOCK_ATTEMPTS = 20;
const LOCK_RETRY_MS = 250;

export class PgNodes implements NodeRegistry {
  private readonly held = new Map<string, pg.Client>();

  constructor(
    private readonly db: Db,
    private readonly url: string,
    private readonly logger: Logger | undefined,
  ) {}

  async register(node: { name: string; host: string; pid: number; at: number }): Promise<void> {
    const client = new pg.Client(connectionConfig(this.url));
    client.on('error', (err) => this.logger?.error({ err, node: node.name }, 'lost the connection holding the node name'));
    await client.connect();
    let locked = false;
    try {
      // A process killed a moment ago still holds the name until PostgreSQL notices its
      // connection closed: give that a few seconds before calling the name taken.
      for (let attempt = 1; ; attempt++) {
        const { rows } = await client.query<{ locked: boolean }>(`SELECT pg_try_advisory_lock(${LOCK}) AS locked`, lockKey(node.name));
        locked = rows[0]!.locked;
        if (locked || attempt >= LOCK_ATTEMPTS) break;
        await new Promise((resolve) => setTimeout(resolve, LOCK_RETRY_MS));
      }
      if (!locked) {
        const [holder] = await this.db.query<{ host: string; pid: number }>(`SELECT host, pid FROM nodes WHERE name = $1`, [node.name]);
        throw new NodeNameInUseError(node.name, holder ? `${holder.host}, pid ${holder.pid}` : 'another process');
      }
      await client.query(
        `INSERT INTO nodes (name, host, pid, started_at, heartbeat_at) VALUES ($1, $2, $3, $4, $4)
         ON CONFLICT (name) DO UPDATE SET host = excluded.host, pid = excluded.pid, started_at = excluded.started_at,
           heartbeat_at = excluded.heartbeat_at`,
        [node.name, node.host, node.pid, node.at],
      );
      this.held.set(node.name, client);
    } catch (err) {
      await client.end().catch(() => undefined);
      throw err;
    }
  }

  async heartbeat(name: string, at: number): Promise<void> {
    await this.db.run(`UPDATE nodes SET heartbeat_at = $2 WHERE name = $1`, [name, at]);
  }

  async unregister(name: string): Promise<void> {
    await this.db.run(`DELETE FROM nodes WHERE name = $1`, [name]);
    const client = this.held.get(name);
    if (!client) return;
    this.held.delete(name);
    await client.query(`SELECT pg_advisory_unlock(${LOCK})`, lockKey(name)).catch(() => undefined);
    await client.end().catch(() => undefined);
  }

  async list(now: number): Promise<NodeRecord[]> {
    const rows = await this.db.query<NodeRow>(
      `SELECT n.*, (SELECT count(*)::int FROM recipients r WHERE r.lease_owner = n.name AND r.lease_until > $1) AS leased
       FROM nodes n ORDER BY n.name`,
      [now],
    );
    return rows.map(toNode);
  }

  /** Ends the sessions holding node names, which lets the names go. */
  async close(): Promise<void> {
    const clients = [...this.held.values()];
    this.held.clear();
    await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
  }
}
