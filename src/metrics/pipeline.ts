/**
 * The acceptance pipeline with its refusals, acceptances and failed logins counted: every door (SMTP, HTTP)
 * goes through it, so the metrics see them all without either door knowing about metrics.
 */
import { SubmissionPipeline, type PipelineDeps } from '../submission/pipeline.js';
import { refusalKind } from '../submission/refusal-reasons.js';
import { SmtpReply } from '../submission/replies.js';
import type { RelayMetrics } from './metrics.js';

export class MeteredPipeline extends SubmissionPipeline {
  constructor(
    deps: PipelineDeps,
    private readonly metrics: RelayMetrics,
  ) {
    super(deps);
  }

  override async authenticate(...args: Parameters<SubmissionPipeline['authenticate']>) {
    try {
      return await super.authenticate(...args);
    } catch (err) {
      if (err instanceof SmtpReply) this.metrics.authFailures.inc();
      throw err;
    }
  }

  override checkEnvelopeSender(...args: Parameters<SubmissionPipeline['checkEnvelopeSender']>) {
    return this.count(super.checkEnvelopeSender(...args));
  }

  override checkRecipient(...args: Parameters<SubmissionPipeline['checkRecipient']>) {
    return this.count(super.checkRecipient(...args));
  }

  override async accept(...args: Parameters<SubmissionPipeline['accept']>) {
    try {
      const result = await super.accept(...args);
      // A repeat (idempotency) answers with the original's queue id and queues nothing.
      if (result === args[0].queueId) this.metrics.accepted.inc();
      return result;
    } catch (err) {
      if (err instanceof SmtpReply) this.count(err);
      throw err;
    }
  }

  /** Counts a refusal (or one a promise resolves to) and passes the result through. */
  private count<T>(refusal: T): T {
    if (refusal instanceof Promise) return refusal.then((r: unknown) => this.count(r)) as T;
    if (refusal instanceof SmtpReply) this.metrics.rejected.inc({ reason: refusalKind(refusal).reason });
    return refusal;
  }
}
