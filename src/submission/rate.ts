/** Credential rate limits as written on the command line and shown back: "20/s", "600/m", "10000/h". */
import type { CredentialLimits } from '../queue/storage.js';

type Rate = NonNullable<CredentialLimits['rate']>;

const UNITS: Record<string, { seconds: number; name: string }> = {
  s: { seconds: 1, name: 'second' },
  m: { seconds: 60, name: 'minute' },
  h: { seconds: 3600, name: 'hour' },
};

/** Throws with a usage hint when `text` is not N/s, N/m or N/h. */
export function parseRate(text: string): Rate {
  const match = /^\s*(\d+)\s*\/\s*([smh])\s*$/.exec(text);
  if (!match || Number(match[1]) < 1) throw new Error(`"${text}" is not a rate (use e.g. 20/s, 600/m or 10000/h, or none)`);
  return { count: Number(match[1]), perSeconds: UNITS[match[2]!]!.seconds };
}

const unitOf = (rate: Rate) => Object.entries(UNITS).find(([, u]) => u.seconds === rate.perSeconds);

export function formatRate(rate: Rate): string {
  const unit = unitOf(rate);
  return unit ? `${rate.count}/${unit[0]}` : `${rate.count}/${rate.perSeconds}s`;
}

/** "20 recipients per second", for refusals. */
export function describeRate(rate: Rate): string {
  const unit = unitOf(rate);
  return `${rate.count} recipients per ${unit ? unit[1].name : `${rate.perSeconds} seconds`}`;
}
