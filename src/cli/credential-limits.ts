/**
 * The rate limit and quota options of `relay credential add|update` (--rate 20/s, --daily N,
 * --monthly N, each clearable with "none"), and how `relay credential list` and `relay stats`
 * show usage against them.
 */
import { type Command, InvalidArgumentError } from 'commander';
import type { CredentialLimits } from '../queue/storage.js';
import { parseRate } from '../submission/rate.js';

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

/** "120/50000", or "120" when unlimited. */
export const usedOf = (used: number, limit: number | null) => (limit == null ? String(used) : `${used}/${limit}`);
