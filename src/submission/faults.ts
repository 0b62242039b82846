/**
 * The reply for an internal failure while accepting a message: always temporary (4xx, never
 * 5xx), 452 4.3.1 when the disk is full (RFC 3463 "mail system full"), else 451 4.3.0 (a locked
 * or damaged database, or anything unexpected). The client keeps the message and retries.
 */
import { reply, type SmtpReply } from './replies.js';

/** better-sqlite3 errors carry SQLite's extended result code, e.g. SQLITE_FULL or SQLITE_IOERR_WRITE. */
const DISK_FULL = /^SQLITE_FULL/;

export function internalFailureReply(err: unknown): SmtpReply {
  const code = (err as { code?: unknown })?.code;
  if (typeof code === 'string' && (DISK_FULL.test(code) || code === 'ENOSPC')) {
    return reply(452, '4.3.1', 'insufficient system storage, message not queued: try again later');
  }
  return reply(451, '4.3.0', 'temporary local problem, message not queued: try again later');
}
