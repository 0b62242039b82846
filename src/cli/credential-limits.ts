/**
 * The rate limit and quota options of `relay credential add|update` (--rate 20/s, --daily N,
 * --monthly N, each clearable with "none"), and the limits-and-usage view shown by
 * `relay credential list` and `relay stats`.
 */
import { type Command, InvalidArgumentError } from 'commander';
import type { CredentialLimits, Storage } from '../queue/storage.js';
import { formatRate, parseRate } from '../submission/rate.js';

type Rate = CredentialLimits['rate'];

/** What "none" parses to: commander turns a parsed null into "", so clearing needs its own value. */
const NONE = 'none';
type None = typeof NONE;
const none = (text: string) => text.trim().toLowerCase() === NONE;

function rateOption(text: string): Rate | None {
  if (none(text)) return NONE;
  try {
    return parseRate(text);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

function countOption(text: string): number | None {
  if (none(text)) return NONE;
  const value = Number(text);
  if (!Number.isInteger(value) || value <= 0) throw new InvalidArgumentError('expected a positive whole number of recipients, or none');
  return value;
}

export interface LimitOptions {
  rate?: Rate | None;
  daily?: number | None;
  monthly?: number | None;
}

export function addLimitOptions(command: Command): Command {
  return command
    .option('--rate <rate>', 'recipients per second, minute or hour, e.g. 20/s (none: no limit)', rateOption)
    .option('--daily <n>', 'recipients per UTC day (none: no limit)', countOption)
    .option('--monthly <n>', 'recipients per UTC month (none: no limit)', countOption);
}

/** Only the limits given on the command line. */
export function limitsFrom(opts: LimitOptions): Partial<CredentialLimits> {
  const value = <T>(option: T | None) => (option === NONE ? null : option);
  const change: Partial<CredentialLimits> = {};
  if (opts.rate !== undefined) change.rate = value(opts.rate);
  if (opts.daily !== undefined) change.daily = value(opts.daily);
  if (opts.monthly !== undefined) change.monthly = value(opts.monthly);
  return change;
}

export interface LimitsView {
  limits: { rate: string | null; daily: number | null; monthly: number | null };
  usage: { today: number; this_month: number };
}

export async function limitsView(storage: Pick<Storage, 'limits'>, name: string, now = Date.now()): Promise<LimitsView> {
  const limits = await storage.limits.get(name);
  const usage = await storage.limits.usage(name, now);
  return {
    limits: { rate: limits.rate && formatRate(limits.rate), daily: limits.daily, monthly: limits.monthly },
    usage: { today: usage.day, this_month: usage.month },
  };
}

/** "120/50000", or "120" when unlimited. */
export const usedOf = (used: number, limit: number | null) => (limit == null ? String(used) : `${used}/${limit}`);
