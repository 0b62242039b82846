/**
 * Counts failures per key (an IP, a username) in a fixed window and locks a key out for a
 * cooling-off period once it reaches the limit. In memory, per process; bounded so that a
 * flood of distinct keys cannot exhaust memory (the oldest entries go first).
 */

interface Entry {
  count: number;
  windowStart: number;
  lockedUntil: number;
}

const MAX_KEYS = 100_000;

export interface FailureLimits {
  limit: number;
  windowMs: number;
  lockoutMs: number;
}

export class FailureCounter {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly limits: () => FailureLimits) {}

  isLocked(key: string, now = Date.now()): boolean {
    return (this.entries.get(key)?.lockedUntil ?? 0) > now;
  }

  fail(key: string, now = Date.now()): void {
    const { limit, windowMs, lockoutMs } = this.limits();
    let entry = this.entries.get(key);
    if (!entry || now - entry.windowStart >= windowMs) {
      if (entry?.lockedUntil && entry.lockedUntil > now) return;
      entry = { count: 0, windowStart: now, lockedUntil: 0 };
    }
    this.entries.delete(key); // re-insert: Map order is then least recently failed first
    this.entries.set(key, entry);
    entry.count++;
    if (entry.count >= limit) entry.lockedUntil = now + lockoutMs;
    if (this.entries.size > MAX_KEYS) this.entries.delete(this.entries.keys().next().value!);
  }

  clear(key: string): void {
    this.entries.delete(key);
  }
}
