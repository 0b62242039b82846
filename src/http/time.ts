/** Times in query strings: ISO 8601 or epoch milliseconds, as epoch milliseconds; a 422 naming the parameter otherwise. */
import { epochMs } from '../envelope/time.js';
import { ApiError } from './errors.js';

export function parseTime(text: string, field: string): number {
  const ms = epochMs(text);
  if (ms === undefined) throw new ApiError(422, `${field} must be an ISO 8601 time or epoch milliseconds, not "${text}"`, field);
  return ms;
}
