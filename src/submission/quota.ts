/**
 * Per-credential rate limits and quotas, counted in recipients: a token bucket per credential
 * (in memory, per process) and daily/monthly limits checked against the durable usage the store
 * commits with each enqueue, plus the recipients reserved by transactions still in progress
 * (so concurrent sessions cannot overshoot). Over a limit is 451 4.7.1 with the reason, at RCPT.
 */
import type { Store } from '../queue/store.js';
import { usagePeriods } from '../queue/usage-periods.js';
import { describeRate } from './rate.js';
import { reply, type SmtpReply } from './replies.js';

interface Bucket {
  tokens: number;
  at: number;
  count: number;
  perSeconds: number;
}

interface Reservation {
  credential: string;
  addresses: Set<string>;
}

export class CredentialQuota {
  private readonly buckets = new Map<string, Bucket>();
  /** Transaction (queue id) → the recipients it has reserved. */
  private readonly reservations = new Map<string, Reservation>();
  /** Credential → recipients reserved by its transactions not yet committed. */
  private readonly pending = new Map<string, number>();

  constructor(private readonly store: Store) {}

  /**
   * Reserves the recipients of transaction `queueId` that it has not reserved yet, all or none.
   * Undefined when they fit, else the 451 4.7.1 refusal.
   */
  reserve(credential: string, queueId: string, addresses: string[], now = Date.now()): SmtpReply | undefined {
    const reservation = this.reservations.get(queueId) ?? { credential, addresses: new Set<string>() };
    const fresh = [...new Set(addresses.map((a) => a.toLowerCase()))].filter((a) => !reservation.addresses.has(a));
    if (fresh.length === 0) return undefined;
    const refusal = this.check(credential, fresh.length, now);
    if (refusal) return refusal;
    for (const address of fresh) reservation.addresses.add(address);
    this.reservations.set(queueId, reservation);
    this.pending.set(credential, (this.pending.get(credential) ?? 0) + fresh.length);
    return undefined;
  }

  /** Drops a transaction's reservation: once its enqueue has committed (the store counts it from then on), or when it is abandoned. */
  release(queueId: string): void {
    const reservation = this.reservations.get(queueId);
    if (!reservation) return;
    this.reservations.delete(queueId);
    const left = (this.pending.get(reservation.credential) ?? 0) - reservation.addresses.size;
    if (left > 0) this.pending.set(reservation.credential, left);
    else this.pending.delete(reservation.credential);
  }

  private check(credential: string, n: number, now: number): SmtpReply | undefined {
    const limits = this.store.getCredentialLimits(credential);
    if (limits.daily != null || limits.monthly != null) {
      const used = this.store.credentialUsage(credential, now);
      const inFlight = this.pending.get(credential) ?? 0;
      const periods = usagePeriods(now);
      for (const [limit, count, name, endsAt] of [
        [limits.daily, used.day, 'daily', periods.dayEndsAt],
        [limits.monthly, used.month, 'monthly', periods.monthEndsAt],
      ] as const) {
        if (limit != null && count + inFlight + n > limit) {
          const resets = new Date(endsAt).toISOString().replace('.000Z', 'Z');
          return reply(451, '4.7.1', `credential ${credential} is over its ${name} quota of ${limit} recipients; resets at ${resets}`);
        }
      }
    }
    if (limits.rate && !this.take(credential, limits.rate, n, now)) {
      return reply(451, '4.7.1', `credential ${credential} is over its rate of ${describeRate(limits.rate)}; try again in a moment`);
    }
    return undefined;
  }

  /** Token bucket holding at most one period's worth; false (and nothing taken) when short. */
  private take(credential: string, rate: { count: number; perSeconds: number }, n: number, now: number): boolean {
    let bucket = this.buckets.get(credential);
    if (!bucket || bucket.count !== rate.count || bucket.perSeconds !== rate.perSeconds) {
      bucket = { tokens: rate.count, at: now, ...rate };
      this.buckets.set(credential, bucket);
    }
    bucket.tokens = Math.min(rate.count, bucket.tokens + ((now - bucket.at) * rate.count) / (rate.perSeconds * 1000));
    bucket.at = now;
    if (bucket.tokens < n) return false;
    bucket.tokens -= n;
    return true;
  }
}
