/**
 * When a deferred recipient is tried again: the configured schedule (the last delay repeats)
 * with jitter, so recipients deferred together (one greylisting server, one outage) do not all
 * come back in the same instant; and expiry once the next attempt would be past the
 * message's expiresAt.
 */

/** ±10%: enough to spread a burst, small enough to keep the schedule recognisable. */
const JITTER = 0.1;

/** Delay after the given attempt (1 = the first attempt failed). */
export function retryDelay(schedule: readonly number[], attempt: number, random: () => number = Math.random): number {
  const base = schedule[Math.min(Math.max(attempt, 1) - 1, schedule.length - 1)]!;
  return Math.round(base * (1 + JITTER * (2 * random() - 1)));
}

export type Retry = { status: 'deferred'; nextAttemptAt: number } | { status: 'expired' };

/** What becomes of a temporary failure: another try, or expiry when that try would come too late. */
export function scheduleRetry(opts: {
  schedule: readonly number[];
  attempt: number;
  now: number;
  expiresAt: number;
  random?: () => number;
}): Retry {
  const nextAttemptAt = opts.now + retryDelay(opts.schedule, opts.attempt, opts.random);
  return nextAttemptAt > opts.expiresAt ? { status: 'expired' } : { status: 'deferred', nextAttemptAt };
}
