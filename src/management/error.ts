/**
 * A management action refused for what it was asked: a bad value, or a target that is unknown
 * or already there. The same refusal through every door: the CLI prints its message, the HTTP
 * API answers it as JSON naming the field (422, 404 or 409).
 */
export type RefusedBecause = 'invalid' | 'unknown' | 'exists';

export class ManagementError extends Error {
  constructor(
    readonly because: RefusedBecause,
    /** The request member (API) or argument (CLI) it is about. */
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}
