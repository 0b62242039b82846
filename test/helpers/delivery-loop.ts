/** A delivery loop assembled as relay.ts does (its bounce notifier, node name and rules) on one storage, started. */
import { loadBounceRules } from '../../src/bounces/classify.js';
import { BounceNotifier } from '../../src/bounces/notifier.js';
import type { RelayConfig } from '../../src/config/schema.js';
import { DeliveryLoop, type DeliveryLoopOptions } from '../../src/delivery/loop.js';
import type { Logger } from '../../src/log.js';
import type { MessageQueue, Storage } from '../../src/queue/storage.js';

export function startDeliveryLoop(options: {
  config: RelayConfig;
  storage: Storage;
  logger: Logger;
  node: string;
  /** Stands between the loop and the queue, e.g. to make its calls fail. */
  wrapQueue?: (queue: MessageQueue) => DeliveryLoopOptions['queue'];
}): DeliveryLoop {
  const { config, storage, logger, node, wrapQueue } = options;
  const bounces = new BounceNotifier({
    config,
    queue: storage.queue,
    suppressions: storage.suppressions,
    logger,
    onQueued: () => loop.wake(),
  });
  const loop = new DeliveryLoop({
    queue: wrapQueue ? wrapQueue(storage.queue) : storage.queue,
    node,
    bounces,
    config,
    logger,
    rules: loadBounceRules(config.bounces.rules!),
    tlsPolicies: storage.tlsPolicies,
  });
  loop.start();
  return loop;
}
