/** A clock the test sets: time stands still until the test advances it. */
import type { Clock } from '../../src/envelope/time.js';

export interface TestClock {
  now: Clock;
  advance(ms: number): void;
}

export function testClock(start = Date.now()): TestClock {
  let at = start;
  return {
    now: () => at,
    advance(ms) {
      at += ms;
    },
  };
}
