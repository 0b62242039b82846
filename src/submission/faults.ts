/**
 * The reply for an internal failure while accepting a message: always temporary (4xx, never
 * 5xx), 452 4.3.1 when the disk is full (RFC 3463 "mail system full"), else 451 4.3.0 (a locked
 * or damaged database, or anything unexpected). The client keeps the message and retries.
 */
import { StorageFullError } from '../queue/storage.js';
import { reply, type SmtpReply } from './replies.js';

export function internalFailureReply(err: unknown): SmtpReply {
  if (err instanceof StorageFullError || (err as { code?: unknown })?.code === 'ENOSPC') {
    return reply(452, '4.3.1', 'insufficient system storage, message not queued: try again later');
  }
  return reply(451, '4.3.0', 'temporary local problem, message not queued: try again later');
}
