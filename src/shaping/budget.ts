/**
 * One destination's adaptive budget, as arithmetic on times handed in (so tests drive it with
 * their own clock). The configured limits are scaled by `level` (1 = as configured): a
 * slow-down reply cuts the level and suspends new deliveries for a while, and every
 * `restoreAfter` successful deliveries since the last change raise it one step.
 *
 * A slow-down counts only for a delivery that started after the last change: the deliveries
 * already in flight when the destination first said "slow down" were sent at the old pace and
 * tend to hear the same reply, which is no news, so one burst cuts the budget once.
 */
import type { AdaptiveSettings, DestinationRule } from './rules.js';

export type BudgetLimits = Pick<DestinationRule, 'maxConnections' | 'messagesPerSecond' | 'messagesPerMinute' | 'messagesPerHour'>;

export type Verdict = 'slowdown' | 'success' | 'other';

export interface BudgetChange {
  reason: 'slowdown' | 'restore';
  at: number;
  fromLevel: number;
  toLevel: number;
  /** For a slow-down: no delivery starts before this. */
  suspendedUntil?: number;
  /** The reply that caused a slow-down. */
  reply?: string;
}

/** "N messages per window", refilled continuously; bursts up to N (at least one message). */
class TokenBucket {
  private tokens: number;
  private updatedAt: number;

  constructor(
    readonly perWindow: number,
    readonly windowMs: number,
    now: number,
  ) {
    this.tokens = perWindow;
    this.updatedAt = now;
  }

  waitMs(now: number, level: number): number {
    this.refill(now, level);
    if (this.tokens >= 1) return 0;
    return Math.ceil(((1 - this.tokens) * this.windowMs) / (this.perWindow * level));
  }

  take(now: number, level: number): void {
    this.refill(now, level);
    this.tokens -= 1;
  }

  /** Called with the new level when it changes, so a cut also shrinks the burst already saved up. */
  clamp(level: number): void {
    this.tokens = Math.min(this.tokens, this.capacity(level));
  }

  private capacity(level: number): number {
    return Math.max(1, this.perWindow * level);
  }

  private refill(now: number, level: number): void {
    const elapsed = Math.max(0, now - this.updatedAt);
    this.tokens = Math.min(this.capacity(level), this.tokens + (elapsed * this.perWindow * level) / this.windowMs);
    this.updatedAt = now;
  }
}

export class AdaptiveBudget {
  level = 1;
  suspendedUntil = 0;
  /** Deliveries started and not yet finished; each holds one connection. */
  inFlight = 0;
  /** Successful deliveries since the last change. */
  successes = 0;
  slowdowns = 0;
  private generation = 0;
  private readonly buckets: TokenBucket[] = [];

  constructor(
    readonly limits: BudgetLimits,
    private settings: AdaptiveSettings,
    now: number,
  ) {
    if (limits.messagesPerSecond) this.buckets.push(new TokenBucket(limits.messagesPerSecond, 1000, now));
    if (limits.messagesPerMinute) this.buckets.push(new TokenBucket(limits.messagesPerMinute, 60_000, now));
    if (limits.messagesPerHour) this.buckets.push(new TokenBucket(limits.messagesPerHour, 3_600_000, now));
  }

  /** New adaptive settings (a reload); the level and suspension carry on. */
  reconfigure(settings: AdaptiveSettings): void {
    this.settings = settings;
  }

  /** Connections allowed at the current level, at least one; undefined without a limit. */
  get maxConnections(): number | undefined {
    const max = this.limits.maxConnections;
    return max === undefined ? undefined : Math.max(1, Math.floor(max * this.level));
  }

  /** A configured rate at the current level. */
  rate(perWindow: number | undefined): number | undefined {
    return perWindow === undefined ? undefined : perWindow * this.level;
  }

  suspended(now: number): boolean {
    return now < this.suspendedUntil;
  }

  hasConnection(): boolean {
    const max = this.maxConnections;
    return max === undefined || this.inFlight < max;
  }

  /** How long until a delivery may start, by the suspension and the rates (connections aside). */
  waitMs(now: number): number {
    return Math.max(this.suspendedUntil - now, ...this.buckets.map((b) => b.waitMs(now, this.level)), 0);
  }

  /** Rough wait for the `ahead`-th delivery after the next one, at the slowest rate. */
  queueMs(ahead: number): number {
    const perMs = Math.min(...this.buckets.map((b) => (b.perWindow * this.level) / b.windowMs));
    return Number.isFinite(perMs) ? Math.ceil(ahead / perMs) : 0;
  }

  /** A delivery starts now; returns the token finish() wants back. */
  start(now: number): number {
    for (const bucket of this.buckets) bucket.take(now, this.level);
    this.inFlight++;
    return this.generation;
  }

  finish(now: number, started: number, verdict: Verdict, reply?: string): BudgetChange | undefined {
    this.inFlight = Math.max(0, this.inFlight - 1);
    if (verdict === 'slowdown') return started === this.generation ? this.slowDown(now, reply) : undefined;
    if (verdict !== 'success' || this.level >= 1) return undefined;
    this.successes++;
    if (this.successes < this.settings.restoreAfter) return undefined;
    return this.change(now, 'restore', Math.min(1, this.level * this.settings.restoreStep));
  }

  private slowDown(now: number, reply: string | undefined): BudgetChange {
    this.slowdowns++;
    this.suspendedUntil = now + this.settings.suspendMs;
    const change = this.change(now, 'slowdown', Math.max(this.settings.floor, this.level * this.settings.cut));
    return { ...change, suspendedUntil: this.suspendedUntil, ...(reply !== undefined && { reply }) };
  }

  private change(now: number, reason: BudgetChange['reason'], toLevel: number): BudgetChange {
    const fromLevel = this.level;
    this.level = toLevel;
    this.successes = 0;
    this.generation++;
    for (const bucket of this.buckets) bucket.clamp(toLevel);
    return { reason, at: now, fromLevel, toLevel };
  }
}
