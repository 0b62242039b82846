/**
 * Traffic shaping for the delivery loop: decides when a delivery to a shaped destination may
 * start. Within the destination's connections and rates it starts at once; when the rates
 * allow it within `maxHoldMs` it waits in memory (in order); otherwise, and always while the
 * destination is suspended, the recipients are deferred to when it may start, as Postfix does
 * for a destination it has suspended ("delivery temporarily suspended").
 *
 * The state lives in memory, per node: large providers throttle per sending IP, and each node
 * sends from its own, so each node must learn its own pace; a restart starts from the
 * configured budget, which the first slow-down reply corrects. `GET /v1/shaping` shows it.
 */
import type { Logger } from '../log.js';
import type { RecipientOutcome } from '../queue/storage.js';
import { AdaptiveBudget, type BudgetChange, type Verdict } from './budget.js';
import { DestinationMatcher, isSlowdown } from './match.js';
import type { DestinationRule, ShapingRules, TlsMode } from './rules.js';

/** What a shaped delivery needs to know of its destination. */
export interface ShapingRoute {
  destination: string;
  tls?: TlsMode;
  messagesPerConnection?: number;
  /** The destination's connections at its current level, when limited. */
  maxConnections?: number;
}

export interface ShapingPermit {
  route: ShapingRoute;
  /** The attempt's outcomes: a slow-down reply cuts the budget, a delivery counts towards restoring it. */
  finish(outcomes: readonly Pick<RecipientOutcome, 'status' | 'smtpCode' | 'response'>[]): void;
}

/** Go now (with a permit when the destination is shaped), or defer the recipients until `until`. */
export type Admission = { go: true; permit?: ShapingPermit } | { go: false; until: number; reason: string };

export interface ShapingChange extends BudgetChange {
  destination: string;
}

export interface DestinationState {
  rule: DestinationRule;
  budget: AdaptiveBudget;
  waiting: number;
  lastChange?: ShapingChange;
}

interface Destination {
  rule: DestinationRule;
  budget: AdaptiveBudget;
  waiting: ((admission: Admission) => void)[];
  timer?: NodeJS.Timeout;
  lastChange?: ShapingChange;
}

/** Waits for a rate this long at most in memory; a longer one defers the recipients. */
const MAX_HOLD_MS = 5_000;
const KEPT_CHANGES = 100;

export class Shaper {
  private rules: ShapingRules;
  private matcher: DestinationMatcher;
  private readonly destinations = new Map<string, Destination>();
  private readonly recent: ShapingChange[] = [];
  private readonly listeners: ((change: ShapingChange) => void)[] = [];
  private readonly clock: () => number;
  private readonly random: () => number;
  private readonly maxHoldMs: number;
  private readonly logger: Logger;

  constructor(opts: { rules: ShapingRules; logger: Logger; clock?: () => number; random?: () => number; maxHoldMs?: number }) {
    this.logger = opts.logger;
    this.clock = opts.clock ?? Date.now;
    this.random = opts.random ?? Math.random;
    this.maxHoldMs = opts.maxHoldMs ?? MAX_HOLD_MS;
    this.rules = opts.rules;
    this.matcher = new DestinationMatcher(opts.rules);
    this.update(opts.rules);
  }

  get current(): ShapingRules {
    return this.rules;
  }

  /** Called with every change of a destination's budget (metrics). */
  onChange(listener: (change: ShapingChange) => void): void {
    this.listeners.push(listener);
  }

  /**
   * New rules (SIGHUP): a destination that keeps its name keeps its level and suspension;
   * deliveries waiting for a destination that is gone start unshaped.
   */
  update(rules: ShapingRules): void {
    const now = this.clock();
    this.rules = rules;
    this.matcher = new DestinationMatcher(rules);
    const names = new Set(rules.destinations.map((r) => r.name));
    for (const [name, dest] of this.destinations) {
      if (names.has(name)) continue;
      this.destinations.delete(name);
      clearTimeout(dest.timer);
      for (const resolve of dest.waiting.splice(0)) resolve({ go: true });
    }
    for (const rule of rules.destinations) {
      const old = this.destinations.get(rule.name);
      const budget = new AdaptiveBudget(rule, rules.adaptive, now);
      if (old) {
        budget.level = old.budget.level;
        budget.suspendedUntil = old.budget.suspendedUntil;
        budget.inFlight = old.budget.inFlight;
        budget.slowdowns = old.budget.slowdowns;
        old.rule = rule;
        old.budget = budget;
        this.pump(old);
      } else {
        this.destinations.set(rule.name, { rule, budget, waiting: [] });
      }
    }
  }

  /** The destination a recipient domain belongs to; the MX hosts are looked up only when a rule needs them. */
  async destinationOf(domain: string, mxHosts: () => Promise<readonly string[]>): Promise<DestinationRule | undefined> {
    const byDomain = this.matcher.byRecipientDomain(domain);
    if (byDomain || !this.matcher.usesMx) return byDomain;
    return this.matcher.byMxHosts(await mxHosts());
  }

  async admit(domain: string, mxHosts: () => Promise<readonly string[]>): Promise<Admission> {
    const rule = await this.destinationOf(domain, mxHosts);
    const dest = rule && this.destinations.get(rule.name);
    if (!dest) return { go: true };
    const { budget } = dest;
    const now = this.clock();
    if (budget.suspended(now)) return this.deferral(dest, budget.suspendedUntil, now);
    const wait = budget.waitMs(now) + budget.queueMs(dest.waiting.length);
    if (wait > this.maxHoldMs) return this.deferral(dest, now + wait, now);
    return new Promise((resolve) => {
      dest.waiting.push(resolve);
      this.pump(dest);
    });
  }

  states(): DestinationState[] {
    return [...this.destinations.values()].map((d) => ({
      rule: d.rule,
      budget: d.budget,
      waiting: d.waiting.length,
      ...(d.lastChange && { lastChange: d.lastChange }),
    }));
  }

  /** The latest changes, oldest first. */
  changes(): ShapingChange[] {
    return [...this.recent];
  }

  now(): number {
    return this.clock();
  }

  /** Starts what the budget allows, in order; sets a timer for the next start a rate holds back. */
  private pump(dest: Destination): void {
    clearTimeout(dest.timer);
    dest.timer = undefined;
    const { budget } = dest;
    while (dest.waiting.length > 0) {
      const now = this.clock();
      if (budget.suspended(now)) {
        for (const resolve of dest.waiting.splice(0)) resolve(this.deferral(dest, budget.suspendedUntil, now));
        return;
      }
      // A finishing delivery pumps again.
      if (!budget.hasConnection()) return;
      const wait = budget.waitMs(now);
      if (wait > 0) {
        dest.timer = setTimeout(() => this.pump(dest), wait);
        dest.timer.unref();
        return;
      }
      const resolve = dest.waiting.shift()!;
      resolve({ go: true, permit: this.permit(dest, budget, budget.start(now)) });
    }
  }

  private permit(dest: Destination, budget: AdaptiveBudget, started: number): ShapingPermit {
    const { rule } = dest;
    let finished = false;
    return {
      route: {
        destination: rule.name,
        tls: rule.tls,
        messagesPerConnection: rule.messagesPerConnection,
        maxConnections: budget.maxConnections,
      },
      finish: (outcomes) => {
        if (finished) return;
        finished = true;
        const slow = outcomes.find((o) => o.status !== 'delivered' && isSlowdown(this.rules.slowdown, o.smtpCode, o.response ?? ''));
        const verdict: Verdict = slow ? 'slowdown' : outcomes.some((o) => o.status === 'delivered') ? 'success' : 'other';
        // A reload may have replaced the budget meanwhile: the delivery is counted in the current
        // one (which took over its connection), but is no news about the new pace.
        const current = dest.budget;
        const change = current.finish(this.clock(), current === budget ? started : -1, verdict, slow?.response);
        if (change) this.changed(dest, change);
        this.pump(dest);
      },
    };
  }

  private changed(dest: Destination, budgetChange: BudgetChange): void {
    const change: ShapingChange = { destination: dest.rule.name, ...budgetChange };
    dest.lastChange = change;
    this.recent.push(change);
    if (this.recent.length > KEPT_CHANGES) this.recent.shift();
    const budget = dest.budget;
    const fields = {
      destination: change.destination,
      // Not `level`: that is pino's own field.
      budgetLevel: change.toLevel,
      previousBudgetLevel: change.fromLevel,
      maxConnections: budget.maxConnections,
      messagesPerSecond: budget.rate(dest.rule.messagesPerSecond),
      messagesPerMinute: budget.rate(dest.rule.messagesPerMinute),
      messagesPerHour: budget.rate(dest.rule.messagesPerHour),
      ...(change.suspendedUntil !== undefined && { suspendedUntil: new Date(change.suspendedUntil).toISOString() }),
      ...(change.reply !== undefined && { reply: change.reply }),
    };
    if (change.reason === 'slowdown')
      this.logger.warn(fields, 'shaping: destination asked to slow down; budget cut and deliveries suspended');
    else this.logger.info(fields, 'shaping: deliveries succeeding; budget raised one step');
    for (const listener of this.listeners) listener(change);
  }

  /** Deferred recipients come back spread over a tenth of the wait (at least a second), not all at once. */
  private deferral(dest: Destination, until: number, now: number): Admission {
    const spread = Math.max(1000, (until - now) / 10);
    const at = Math.round(until + this.random() * spread);
    const why = dest.budget.suspended(now) ? 'suspended by traffic shaping' : 'over its traffic shaping rate';
    return { go: false, until: at, reason: `4.7.0 delivery to ${dest.rule.name} ${why} until ${new Date(until).toISOString()}` };
  }
}
