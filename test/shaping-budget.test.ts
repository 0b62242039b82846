/** The adaptive budget's arithmetic, and the shaper's admissions, on a test clock. */
import { describe, expect, it } from 'vitest';
import { AdaptiveBudget } from '../src/shaping/budget.js';
import type { AdaptiveSettings } from '../src/shaping/rules.js';
import { parseShapingRules } from '../src/shaping/rules.js';
import { Shaper } from '../src/shaping/shaper.js';
import { createLogger } from '../src/log.js';

const SETTINGS: AdaptiveSettings = { cut: 0.5, floor: 0.1, suspendMs: 60_000, restoreAfter: 3, restoreStep: 2 };
const T0 = 1_000_000;

describe('AdaptiveBudget', () => {
  it('lets a burst of the per-second rate through, then one message per 1/rate', () => {
    const budget = new AdaptiveBudget({ messagesPerSecond: 4 }, SETTINGS, T0);
    for (let i = 0; i < 4; i++) {
      expect(budget.waitMs(T0)).toBe(0);
      budget.start(T0);
    }
    expect(budget.waitMs(T0)).toBe(250);
    expect(budget.waitMs(T0 + 100)).toBe(150);
    expect(budget.waitMs(T0 + 250)).toBe(0);
  });

  it('applies the slowest of several windows', () => {
    const budget = new AdaptiveBudget({ messagesPerSecond: 10, messagesPerMinute: 2 }, SETTINGS, T0);
    budget.start(T0);
    budget.start(T0);
    expect(budget.waitMs(T0)).toBe(30_000);
  });

  it('counts connections in flight against max_connections', () => {
    const budget = new AdaptiveBudget({ maxConnections: 2 }, SETTINGS, T0);
    const a = budget.start(T0);
    budget.start(T0);
    expect(budget.hasConnection()).toBe(false);
    budget.finish(T0, a, 'success');
    expect(budget.hasConnection()).toBe(true);
  });

  it('a slow-down halves connections and rates and suspends; in-flight deliveries of the old pace do not cut again', () => {
    const budget = new AdaptiveBudget({ maxConnections: 8, messagesPerSecond: 10 }, SETTINGS, T0);
    const first = budget.start(T0);
    const second = budget.start(T0);
    const change = budget.finish(T0 + 10, first, 'slowdown', '421 4.7.0 try again later');
    expect(change).toEqual({
      reason: 'slowdown',
      at: T0 + 10,
      fromLevel: 1,
      toLevel: 0.5,
      suspendedUntil: T0 + 10 + 60_000,
      reply: '421 4.7.0 try again later',
    });
    expect(budget.maxConnections).toBe(4);
    expect(budget.rate(10)).toBe(5);
    expect(budget.suspended(T0 + 60_009)).toBe(true);
    expect(budget.waitMs(T0 + 10)).toBe(60_000);
    expect(budget.finish(T0 + 20, second, 'slowdown')).toBeUndefined();
    expect(budget.level).toBe(0.5);
    expect(budget.suspended(T0 + 60_010)).toBe(false);
  });

  it('never goes below the floor (and keeps one connection), but each new slow-down suspends again', () => {
    const budget = new AdaptiveBudget({ maxConnections: 3 }, SETTINGS, T0);
    let now = T0;
    for (let i = 0; i < 6; i++) {
      now += 100_000;
      budget.finish(now, budget.start(now), 'slowdown');
    }
    expect(budget.level).toBe(0.1);
    expect(budget.maxConnections).toBe(1);
    expect(budget.suspendedUntil).toBe(now + 60_000);
    expect(budget.slowdowns).toBe(6);
  });

  it('restores step by step: every restore_after successes double the level, up to the configured budget', () => {
    const budget = new AdaptiveBudget({ maxConnections: 8 }, SETTINGS, T0);
    let now = T0;
    budget.finish(now, budget.start(now), 'slowdown');
    budget.finish(now, budget.start(now), 'slowdown');
    expect(budget.level).toBe(0.25);
    now += 120_000;
    const levels: number[] = [];
    for (let i = 0; i < 9; i++) {
      const change = budget.finish(now, budget.start(now), 'success');
      if (change) levels.push(change.toLevel);
    }
    expect(levels).toEqual([0.5, 1]);
    expect(budget.maxConnections).toBe(8);
    // At the configured budget, successes change nothing; other failures neither cut nor count.
    expect(budget.finish(now, budget.start(now), 'success')).toBeUndefined();
    budget.finish(now, budget.start(now), 'slowdown');
    budget.finish(now, budget.start(now), 'success');
    budget.finish(now, budget.start(now), 'other');
    budget.finish(now, budget.start(now), 'success');
    expect(budget.level).toBe(0.5);
  });

  it('a cut also shrinks the burst saved up, so the first messages after a suspension come at the new rate', () => {
    const budget = new AdaptiveBudget({ messagesPerMinute: 60 }, SETTINGS, T0);
    budget.finish(T0, budget.start(T0), 'slowdown');
    const resume = T0 + 60_000;
    let started = 0;
    while (budget.waitMs(resume) === 0) {
      budget.start(resume);
      started++;
    }
    expect(started).toBe(30);
    expect(budget.waitMs(resume)).toBe(2000);
  });
});

describe('Shaper', () => {
  const rules = parseShapingRules(
    {
      adaptive: { suspend: '30s', restore_after: 2 },
      slowdown: [{ code: 421 }, { code: 451, status: '4.7.*' }, { match: 'rate limited' }],
      destinations: [{ name: 'big', domains: ['big.test'], mx_suffixes: ['mx.big.test'], max_connections: 2, messages_per_minute: 60 }],
    },
    'test rules',
  );
  const logger = createLogger('silent');
  const mxOf = (hosts: string[]) => async () => hosts;

  it('matches by domain, by MX suffix, or not at all', async () => {
    const shaper = new Shaper({ rules, logger, clock: () => T0 });
    const byDomain = await shaper.admit('BIG.test', mxOf([]));
    expect(byDomain.go && byDomain.permit?.route.destination).toBe('big');
    const byMx = await shaper.admit('hosted.test', mxOf(['in1.mx.big.test']));
    expect(byMx.go && byMx.permit?.route.destination).toBe('big');
    const lookalike = await shaper.admit('other.test', mxOf(['in1.evilmx.big.test.example']));
    expect(lookalike).toEqual({ go: true });
  });

  it('defers while suspended, counts a 421 or 451 4.7.x but not a 450 or a 451 4.3.0', async () => {
    let now = T0;
    const shaper = new Shaper({ rules, logger, clock: () => now, random: () => 0 });
    const changes: string[] = [];
    shaper.onChange((c) => changes.push(`${c.reason} ${c.fromLevel}->${c.toLevel}`));
    const admit = async () => {
      const admission = await shaper.admit('big.test', mxOf([]));
      if (!admission.go) throw new Error(`deferred: ${admission.reason}`);
      return admission.permit!;
    };
    (await admit()).finish([{ status: 'deferred', smtpCode: 450, response: '450 4.2.0 mailbox busy' }]);
    (await admit()).finish([{ status: 'deferred', smtpCode: 451, response: '451 4.3.0 local error' }]);
    expect(changes).toEqual([]);
    (await admit()).finish([{ status: 'deferred', smtpCode: 451, response: '451 4.7.500 Server busy. Please try again later' }]);
    expect(changes).toEqual(['slowdown 1->0.5']);
    now += 1000;
    const deferred = await shaper.admit('big.test', mxOf([]));
    expect(deferred).toMatchObject({ go: false, until: T0 + 30_000 });
    expect(!deferred.go && deferred.reason).toMatch(/^4\.7\.0 delivery to big suspended by traffic shaping until /);
    now = T0 + 30_000;
    (await admit()).finish([{ status: 'delivered', smtpCode: 250, response: '250 ok' }]);
    (await admit()).finish([{ status: 'delivered', smtpCode: 250, response: '250 ok' }]);
    expect(changes).toEqual(['slowdown 1->0.5', 'restore 0.5->1']);
  });

  it('holds a delivery beyond max_connections until one finishes, in order', async () => {
    const now = T0;
    const shaper = new Shaper({ rules, logger, clock: () => now });
    const a = await shaper.admit('big.test', mxOf([]));
    const b = await shaper.admit('big.test', mxOf([]));
    const order: string[] = [];
    const c = shaper.admit('big.test', mxOf([])).then((x) => (order.push('c'), x));
    const d = shaper.admit('big.test', mxOf([])).then((x) => (order.push('d'), x));
    await Promise.resolve();
    expect(order).toEqual([]);
    expect(shaper.states()[0]).toMatchObject({ waiting: 2 });
    if (!a.go || !b.go) throw new Error('not admitted');
    a.permit!.finish([{ status: 'delivered' }]);
    await c;
    expect(order).toEqual(['c']);
    b.permit!.finish([{ status: 'delivered' }]);
    await d;
    expect(order).toEqual(['c', 'd']);
  });

  it('a reload keeps the level and the connections in flight, and frees them when those deliveries finish', async () => {
    let now = T0;
    const shaper = new Shaper({ rules, logger, clock: () => now, random: () => 0 });
    const first = await shaper.admit('big.test', mxOf([]));
    const second = await shaper.admit('big.test', mxOf([]));
    if (!first.go || !second.go) throw new Error('not admitted');
    first.permit!.finish([{ status: 'deferred', smtpCode: 421, response: '421 4.7.0 slow down' }]);
    now += 30_000;
    const wider = parseShapingRules(
      { destinations: [{ name: 'big', domains: ['big.test'], max_connections: 4, messages_per_minute: 60 }] },
      'wider',
    );
    shaper.update(wider);
    expect(shaper.states()[0]!.budget).toMatchObject({ level: 0.5, inFlight: 1, maxConnections: 2 });
    // A slow-down heard by a delivery from before the reload is no news about the new budget.
    second.permit!.finish([{ status: 'deferred', smtpCode: 421, response: '421 4.7.0 slow down' }]);
    expect(shaper.states()[0]!.budget).toMatchObject({ level: 0.5, inFlight: 0 });
  });

  it('defers a delivery the rate would hold back longer than it waits in memory', async () => {
    const now = T0;
    const strict = parseShapingRules({ destinations: [{ name: 'slow', domains: ['slow.test'], messages_per_hour: 1 }] }, 'strict');
    const shaper = new Shaper({ rules: strict, logger, clock: () => now, random: () => 0 });
    expect((await shaper.admit('slow.test', mxOf([]))).go).toBe(true);
    const second = await shaper.admit('slow.test', mxOf([]));
    expect(second).toMatchObject({ go: false, until: T0 + 3_600_000 });
    expect(!second.go && second.reason).toMatch(/over its traffic shaping rate/);
  });
});
