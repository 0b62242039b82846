/**
 * Per-credential rate limits and quotas, counted in recipients: a token bucket per credential
 * kept in storage (so every node draws from one bucket), and daily/monthly limits checked at RCPT
 * against the durable usage plus the recipients reserved by this process's transactions still in
 * progress. That early check is advisory across nodes: the enqueue itself commits only within the
 * quota (NewMessage.quota), so N recipients a day means N however many nodes share the database.
 * Over a limit is 451 4.7.1 with the reason.
 */
import type { Clock } from '../envelope/time.js';
import type { CredentialLimits, LimitStore } from '../queue/storage.js';
import { usagePeriods } from '../queue/usage-periods.js';
import { describeRate } from './rate.js';
import { reply, type SmtpReply } from './replies.js';

interface Reservation {
  credential: string;
  addresses: Set<string>;
}

export class CredentialQuota {
  /** Transaction (queue id) → the recipients it has reserved. */
  private readonly reservations = new Map<string, Reservation>();
  /** Credential → recipients reserved by its transactions not yet committed. */
  private readonly pending = new Map<string, number>();

  constructor(
    private readonly limits: LimitStore,
    private readonly now: Clock = Date.now,
  ) {}

  /**
   * Reserves the recipients of transaction `queueId` that it has not reserved yet, all or none.
   * Undefined when they fit, else the 451 4.7.1 refusal.
   */
  async reserve(credential: string, queueId: string, addresses: string[], now = this.now()): Promise<SmtpReply | undefined> {
    const reservation = this.reservations.get(queueId) ?? { credential, addresses: new Set<string>() };
    const fresh = [...new Set(addresses.map((a) => a.toLowerCase()))].filter((a) => !reservation.addresses.has(a));
    if (fresh.length === 0) return undefined;
    const refusal = await this.check(credential, fresh.length, now);
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

  private async check(credential: string, n: number, now: number): Promise<SmtpReply | undefined> {
    const limits = await this.limits.get(credential);
    if (limits.daily != null || limits.monthly != null) {
      const used = await this.limits.usage(credential, now);
      const inFlight = this.pending.get(credential) ?? 0;
      for (const [limit, count, name] of [
        [limits.daily, used.day, 'daily'],
        [limits.monthly, used.month, 'monthly'],
      ] as const) {
        if (limit != null && count + inFlight + n > limit) return overQuota(credential, name, limit, now);
      }
    }
    if (limits.rate && !(await this.limits.takeTokens(credential, limits.rate, n, now))) {
      return reply(451, '4.7.1', `credential ${credential} is over its rate of ${describeRate(limits.rate)}; try again in a moment`);
    }
    return undefined;
  }

  /** The caps the enqueue enforces atomically. */
  async caps(credential: string): Promise<Pick<CredentialLimits, 'daily' | 'monthly'>> {
    const { daily, monthly } = await this.limits.get(credential);
    return { daily, monthly };
  }
}

/** 451 4.7.1 naming the quota and when it resets. */
export function overQuota(credential: string, period: 'daily' | 'monthly', limit: number | null, now: number): SmtpReply {
  const periods = usagePeriods(now);
  const endsAt = period === 'daily' ? periods.dayEndsAt : periods.monthEndsAt;
  const resets = new Date(endsAt).toISOString().replace('.000Z', 'Z');
  return reply(451, '4.7.1', `credential ${credential} is over its ${period} quota of ${limit} recipients; resets at ${resets}`);
}
