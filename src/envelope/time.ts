/** Times leave Relay as ISO 8601 text (API, CLI JSON, webhooks) and are stored as epoch milliseconds. */

export function isoTime(ms: number): string;
export function isoTime(ms: number | null): string | null;
export function isoTime(ms: number | null): string | null {
  return ms == null ? null : new Date(ms).toISOString();
}

/**
 * The time in epoch ms, handed to code whose decisions depend on it (rates, quotas, lockouts,
 * retries) so tests can set and advance it; Date.now in production.
 */
export type Clock = () => number;
/** ISO 8601 text or epoch milliseconds as epoch milliseconds; undefined when it is neither. */
export function epochMs(text: string): number | undefined {
  const ms = /^\d+$/.test(text) ? Number(text) : Date.parse(text);
  return Number.isFinite(ms) ? ms : undefined;
}
