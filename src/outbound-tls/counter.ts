/** Sessions under a DANE or MTA-STS policy, counted per UTC day for the domain's TLS report (RFC 8460). */
import type { Logger } from '../log.js';
import type { TlsPolicyStore } from '../queue/storage.js';

export interface ReportedPolicy {
  type: 'sts' | 'tlsa';
  /** The policy as the report quotes it. */
  lines: string[];
}

/** The UTC day of an epoch-ms time, as YYYY-MM-DD. */
export const utcDay = (ms: number): string => new Date(ms).toISOString().slice(0, 10);

export class TlsResultCounter {
  constructor(
    private readonly store: Pick<TlsPolicyStore, 'countTlsResults'>,
    private readonly logger: Logger,
    private readonly clock: () => number,
  ) {}

  /** Counts one session; a count that cannot be written is logged, never in the way of delivery. */
  count(domain: string, policy: ReportedPolicy, mxHost: string, resultType: string): void {
    const counted = this.store.countTlsResults([
      {
        day: utcDay(this.clock()),
        policyDomain: domain,
        policyType: policy.type,
        policyString: policy.lines,
        mxHost,
        resultType,
        count: 1,
      },
    ]);
    // Cannot reject: the catch logs.
    void counted.catch((err: unknown) => this.logger.warn({ err, recipientDomain: domain }, 'could not count a TLS report result'));
  }
}
