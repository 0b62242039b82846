/** Queue ids: time-ordered so listings sort by arrival, random enough to be unique across nodes. */
import { randomBytes } from 'node:crypto';

export function newQueueId(): string {
  return Date.now().toString(36).toUpperCase() + randomBytes(5).toString('hex').toUpperCase();
}
