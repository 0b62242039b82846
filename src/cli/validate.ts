/** Commander argument parsers for what the CLI alone is given. */
import { InvalidArgumentError } from 'commander';

/** Counts such as --limit. */
export function positiveInteger(input: string): number {
  const value = Number(input);
  if (!Number.isInteger(value) || value <= 0) throw new InvalidArgumentError('expected a positive whole number');
  return value;
}
