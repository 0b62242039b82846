/**
 * Memory the test process still holds, after a full garbage collection, so that buffers
 * already let go of do not count. For checking that a large input is not kept.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Heap plus Buffers/ArrayBuffers in use right now. */
export function retainedBytes(): number {
  gc();
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.arrayBuffers;
}
