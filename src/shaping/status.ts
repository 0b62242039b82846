/**
 * The shaping rules and a running relay's budgets as JSON, the one shape `GET /v1/shaping`,
 * `relay shaping status --json` and the dashboard read: each destination's configured limits,
 * and with a running shaper its current ones.
 */
import { isoTime } from '../envelope/time.js';
import type { AdaptiveBudget } from './budget.js';
import type { DestinationRule, ShapingRules } from './rules.js';
import type { Shaper, ShapingChange } from './shaper.js';

export interface ShapingLimitsJson {
  max_connections: number | null;
  messages_per_second: number | null;
  messages_per_minute: number | null;
  messages_per_hour: number | null;
}

export interface DestinationJson {
  name: string;
  domains: string[];
  mx_suffixes: string[];
  tls: string | null;
  messages_per_connection: number | null;
  configured: ShapingLimitsJson;
  /** Present when the relay is running: the limits at the current level. */
  current?: ShapingLimitsJson & {
    level: number;
    suspended_until: string | null;
    in_flight: number;
    waiting: number;
    successes_since_change: number;
    slowdowns: number;
    last_change: ChangeJson | null;
  };
}

export interface ChangeJson {
  destination: string;
  reason: 'slowdown' | 'restore';
  at: string;
  from_level: number;
  to_level: number;
  suspended_until: string | null;
  reply: string | null;
}

export interface ShapingJson {
  sources: string[];
  adaptive: { cut: number; floor: number; suspend_ms: number; restore_after: number; restore_step: number };
  destinations: DestinationJson[];
  /** Present when the relay is running: the latest changes, oldest first. */
  changes?: ChangeJson[];
}

export function shapingJson(rules: ShapingRules, shaper?: Shaper): ShapingJson {
  const states = new Map(shaper?.states().map((s) => [s.rule.name, s]));
  const now = shaper?.now() ?? Date.now();
  const { adaptive } = rules;
  return {
    sources: rules.sources,
    adaptive: {
      cut: adaptive.cut,
      floor: adaptive.floor,
      suspend_ms: adaptive.suspendMs,
      restore_after: adaptive.restoreAfter,
      restore_step: adaptive.restoreStep,
    },
    destinations: rules.destinations.map((rule) => {
      const state = states.get(rule.name);
      const json: DestinationJson = {
        name: rule.name,
        domains: rule.domains,
        mx_suffixes: rule.mxSuffixes,
        tls: rule.tls ?? null,
        messages_per_connection: rule.messagesPerConnection ?? null,
        configured: limitsJson(rule),
      };
      if (state) {
        json.current = {
          ...limitsJson(rule, state.budget),
          level: round(state.budget.level),
          suspended_until: state.budget.suspended(now) ? isoTime(state.budget.suspendedUntil) : null,
          in_flight: state.budget.inFlight,
          waiting: state.waiting,
          successes_since_change: state.budget.successes,
          slowdowns: state.budget.slowdowns,
          last_change: state.lastChange ? changeJson(state.lastChange) : null,
        };
      }
      return json;
    }),
    ...(shaper && { changes: shaper.changes().map(changeJson) }),
  };
}

function limitsJson(rule: DestinationRule, budget?: AdaptiveBudget): ShapingLimitsJson {
  const rate = (value: number | undefined) => {
    const scaled = budget ? budget.rate(value) : value;
    return scaled === undefined ? null : round(scaled);
  };
  return {
    max_connections: (budget ? budget.maxConnections : rule.maxConnections) ?? null,
    messages_per_second: rate(rule.messagesPerSecond),
    messages_per_minute: rate(rule.messagesPerMinute),
    messages_per_hour: rate(rule.messagesPerHour),
  };
}

function changeJson(change: ShapingChange): ChangeJson {
  return {
    destination: change.destination,
    reason: change.reason,
    at: isoTime(change.at),
    from_level: round(change.fromLevel),
    to_level: round(change.toLevel),
    suspended_until: change.suspendedUntil === undefined ? null : isoTime(change.suspendedUntil),
    reply: change.reply ?? null,
  };
}

const round = (n: number) => Math.round(n * 1000) / 1000;
