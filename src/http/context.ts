/** What every HTTP route is handed: the stages it calls and the relay's state it reports. */
import type { AuditTrail } from '../audit/trail.js';
import type { RelayConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { RelayMetrics } from '../metrics/metrics.js';
import type { Storage } from '../queue/storage.js';
import type { Shaper } from '../shaping/shaper.js';
import type { SubmissionPipeline } from '../submission/pipeline.js';
import type { FeedbackProcessor } from '../feedback/apply.js';
import type { FeedbackTokens } from '../feedback/tokens.js';

export interface ApiContext {
  config: RelayConfig;
  storage: Storage;
  pipeline: SubmissionPipeline;
  metrics: RelayMetrics;
  logger: Logger;
  /** Management actions are recorded here, with `actorOf(request.principal)` as the actor. */
  audit: AuditTrail;
  /** Names of submission listeners that are not listening. */
  listenersDown: () => string[];
  /** The delivery loop's traffic shaping, for its state. */
  shaper: Shaper;
  /** One-click unsubscribe: reads the tokens, records the unsubscribe. */
  feedback?: { tokens: FeedbackTokens; processor: FeedbackProcessor };
}
