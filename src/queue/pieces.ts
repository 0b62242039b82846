/**
 * How both backends store a message body. A message that fits in one piece is one value in
 * `messages.body`, as it always was. A bigger one goes to `message_pieces` in pieces of
 * PIECE_BYTES, with `messages.body` left NULL, so that neither the insert nor the read at
 * delivery ever holds the whole message twice. (A node too old to know the pieces reads NULL
 * and leaves the message to the others, rather than sending part of it.)
 */
import { splitHead, type MessageParts } from '../envelope/header.js';

export const PIECE_BYTES = 1 << 20;

/**
 * The message cut into runs of chunks of at most `size` bytes each (subarrays, nothing copied),
 * the whole head in the first: a head longer than `size` is a run of its own.
 */
export function pieceRuns({ head, rest }: MessageParts, size = PIECE_BYTES): Buffer[][] {
  const runs: Buffer[][] = [[head]];
  let length = head.length;
  for (let chunk of rest) {
    while (chunk.length > 0) {
      if (length >= size) {
        runs.push([]);
        length = 0;
      }
      const taken = chunk.subarray(0, size - length);
      runs.at(-1)!.push(taken);
      length += taken.length;
      chunk = chunk.subarray(taken.length);
    }
  }
  return runs;
}

/** A run as one Buffer: the chunk itself when it is alone. */
export function joinRun(run: Buffer[]): Buffer {
  return run.length === 1 ? run[0]! : Buffer.concat(run);
}

/** The stored pieces (one `messages.body`, else the `message_pieces` rows in order) as MessageParts. */
export function storedParts(pieces: Buffer[]): MessageParts | undefined {
  return pieces.length === 0 ? undefined : splitHead(pieces);
}
