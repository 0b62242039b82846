/** A delivery loop assembled as relay.ts does (its bounce notifier, node name, rules and traffic shaping) on one storage, started. */
import { loadBounceRules } from '../../src/bounces/classify.js';
import { BounceNotifier } from '../../src/bounces/notifier.js';
import type { RelayConfig } from '../../src/config/schema.js';
import { DeliveryLoop, type DeliveryLoopOptions } from '../../src/delivery/loop.js';
import type { Clock } from '../../src/envelope/time.js';
import type { Logger } from '../../src/log.js';
import type { MessageQueue, Storage } from '../../src/queue/storage.js';
import { shapingRulesFor } from '../../src/shaping/rules.js';
import { Shaper } from '../../src/shaping/shaper.js';

export function startDeliveryLoop(options: {
  config: RelayConfig;
  storage: Storage;
  logger: Logger;
  node: string;
  /** Stands between the loop and the queue, e.g. to make its calls fail. */
  wrapQueue?: (queue: MessageQueue) => DeliveryLoopOptions['queue'];
  clock?: Clock;
  /** Called with the queue id once the loop has handed an attempt's outcomes to the bounce notifier and it has returned. */
  onNotified?: (queueId: string) => void;
}): DeliveryLoop {
  const { config, storage, logger, node, wrapQueue, clock, onNotified } = options;
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
    bounces: {
      notify: async (job, outcomes, message) => {
        await bounces.notify(job, outcomes, message);
        onNotified?.(job.queueId);
      },
    },
    config,
    logger,
    rules: loadBounceRules(config.bounces.rules!),
    clock,
    shaper: new Shaper({ rules: shapingRulesFor(config), logger }),
    tlsPolicies: storage.tlsPolicies,
  });
  loop.start();
  return loop;
}
