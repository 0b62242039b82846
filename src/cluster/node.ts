/**
 * This process as one node among those sharing a database. Joining registers the node's name
 * (refused while a live process holds it) and takes back the leases a previous run under the
 * same name left behind, so recipients claimed but not attempted before a crash go out at once
 * instead of after the lease. While running, a heartbeat renews the node's leases, so an
 * attempt longer than `delivery.lease` is never taken over by another node, and a dead node's
 * leases run out within `delivery.lease`.
 */
import { hostname } from 'node:os';
import type { RelayConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { Storage } from '../queue/storage.js';

/** The node's name: `node_name`, else the host name. */
export function nodeName(config: Pick<RelayConfig, 'node_name'>): string {
  return config.node_name ?? hostname();
}

export class NodeMembership {
  private timer: NodeJS.Timeout | undefined;
  private beating: Promise<void> | undefined;

  constructor(
    private readonly deps: {
      storage: Pick<Storage, 'nodes' | 'queue'>;
      config: RelayConfig;
      logger: Logger;
      name: string;
    },
  ) {}

  async join(): Promise<void> {
    const { storage, name, logger } = this.deps;
    await storage.nodes.register({ name, host: hostname(), pid: process.pid, at: Date.now() });
    const taken = await storage.queue.releaseLeases(name);
    if (taken > 0) logger.info({ node: name, recipients: taken }, 'took back the leases of a previous run under this node name');
    this.schedule();
  }

  async leave(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.beating;
    await this.deps.storage.nodes.unregister(this.deps.name);
  }

  /** A third of the lease: two heartbeats may fail before a lease runs out. */
  private interval(): number {
    return Math.max(250, Math.floor(this.deps.config.delivery.lease / 3));
  }

  private schedule(): void {
    this.timer = setTimeout(() => {
      this.beating = this.beat().finally(() => {
        this.beating = undefined;
        if (this.timer) this.schedule();
      });
    }, this.interval());
    this.timer.unref();
  }

  private async beat(): Promise<void> {
    const { storage, name, config, logger } = this.deps;
    const now = Date.now();
    try {
      await storage.nodes.heartbeat(name, now);
      await storage.queue.renewLeases(name, now + config.delivery.lease);
    } catch (err) {
      logger.error({ err, node: name }, 'node heartbeat failed');
    }
  }
}
