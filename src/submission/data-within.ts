/**
 * A message's DATA as it arrives, kept up to `limit` bytes: past it the rest is read and counted
 * but not kept, so a client cannot make a listener hold more than the limit. `done` gets the
 * chunks (none once past the limit) and the size read.
 */
import type { Readable } from 'node:stream';

export function readDataWithin(stream: Readable, limit: number, done: (chunks: Buffer[], size: number) => void): void {
  const chunks: Buffer[] = [];
  let size = 0;
  stream.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size <= limit) chunks.push(chunk);
    else chunks.length = 0;
  });
  stream.on('end', () => done(chunks, size));
}
