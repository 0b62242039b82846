/**
 * Idempotent submission: a client that retries after a timeout must not make the mail go twice.
 * Within limits.idempotency_window, a submission by the same credential with the same
 * Idempotency-Key header, or with the same client-supplied Message-ID and the same envelope
 * (the envelope is part of that key so that one message sent in recipient batches still goes
 * to every batch), is answered with the original queue id and not queued again. Keys are
 * committed with the message, and the enqueue refuses a key already committed (so two nodes
 * receiving the same submission at once queue it once); within this process, a submission still
 * in flight makes its twin wait for it.
 */
import { createHash } from 'node:crypto';
import type { RelayConfig } from '../config/schema.js';
import type { IdempotencyStore } from '../queue/storage.js';

const LF = 0x0a;

/**
 * Removes every Idempotency-Key field (with its folded lines) from the header of a CRLF message,
 * returning the message without it and the first key's value.
 */
export function takeIdempotencyKey(message: Buffer): { message: Buffer; key: string | undefined } {
  const blank = message.indexOf('\r\n\r\n');
  const headerEnd = blank === -1 ? message.length : blank + 2;
  const kept: Buffer[] = [];
  let key: string | undefined;
  let dropping = false;
  let inFirstKey = false;
  for (let start = 0; start < headerEnd; ) {
    const lf = message.indexOf(LF, start);
    const end = lf === -1 || lf >= headerEnd ? headerEnd : lf + 1;
    const line = message.subarray(start, end);
    const text = line.toString('utf8').replace(/[\r\n]+$/, '');
    const folded = text[0] === ' ' || text[0] === '\t';
    if (!folded) {
      dropping = /^idempotency-key[ \t]*:/i.test(text);
      inFirstKey = dropping && key === undefined;
      if (inFirstKey) key = text.slice(text.indexOf(':') + 1).trim();
    } else if (inFirstKey) key += ` ${text.trim()}`;
    if (!dropping) kept.push(line);
    start = end;
  }
  if (key === undefined) return { message, key };
  kept.push(message.subarray(headerEnd));
  return { message: Buffer.concat(kept), key: key.trim() || undefined };
}

/** The keys a submission is known by: its Idempotency-Key, and its client-supplied Message-ID with the envelope. */
export function idempotencyKeys(options: {
  key: string | undefined;
  clientMessageId: string | undefined;
  mailFrom: string;
  recipients: string[];
}): string[] {
  const keys: string[] = [];
  if (options.key) keys.push(`key:${options.key}`);
  if (options.clientMessageId) {
    const envelope = [options.mailFrom, ...options.recipients.map((r) => r.toLowerCase()).sort()].join('\n');
    keys.push(`mid:${options.clientMessageId} ${createHash('sha256').update(envelope).digest('base64url')}`);
  }
  return keys;
}

/** The queue id a submission is known by, and whether it repeats one already committed. */
export interface Accepted {
  queueId: string;
  duplicate: boolean;
}

export class IdempotentSubmissions {
  /** credential + key → the submission in flight under it. */
  private readonly inFlight = new Map<string, Promise<Accepted>>();

  constructor(
    private readonly store: IdempotencyStore,
    private readonly config: RelayConfig,
  ) {}

  /** The original queue id when an equal submission was accepted, else runs `submit` and returns its queue id. */
  async once(credential: string, keys: string[], submit: () => Promise<Accepted>): Promise<Accepted> {
    if (keys.length === 0) return submit();
    const since = this.since();
    for (;;) {
      for (const key of keys) {
        const queueId = await this.store.find(credential, key, since);
        if (queueId) return { queueId, duplicate: true };
      }
      const running = keys.map((key) => this.inFlight.get(`${credential}\0${key}`)).find((p) => p !== undefined);
      if (!running) break;
      // Once it settles it is either committed (found above next time) or failed (we go ahead).
      await running.catch(() => undefined);
    }
    const submission = submit();
    const names = keys.map((key) => `${credential}\0${key}`);
    for (const name of names) this.inFlight.set(name, submission);
    try {
      return await submission;
    } finally {
      for (const name of names) if (this.inFlight.get(name) === submission) this.inFlight.delete(name);
    }
  }

  /** Keys recorded before this are forgotten. */
  since(now = Date.now()): number {
    return now - this.config.limits.idempotency_window;
  }
}
