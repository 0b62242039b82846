/** Reading the event log from tests: every matching event, oldest first. */
import type { EventLog, EventQuery, EventRecord } from '../../src/queue/storage.js';

export function eventsOf(storage: { events: Pick<EventLog, 'query'> }, filter: Omit<EventQuery, 'limit'> = {}): Promise<EventRecord[]> {
  return storage.events.query({ limit: 100_000, ...filter });
}
