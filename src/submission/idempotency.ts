/**
 * Idempotent submission: a client that retries after a timeout must not make the mail go twice.
 * Within limits.idempotency_window, a submission by the same credential with the same
 * Idempotency-Key header, or with the same client-supplied Message-ID and the same envelope
 * (the envelope is part of that key so that one message sent in recipient batches still goes
 * to every batch), is answered with the original queue id and not queued again. Keys are
 * committed with the message, and the enqueue refuses a key already committed (so two nodes
 * receiving the same submission at once queue it once); within this process, a submission still
 * in flight makes its twin wait for it. An Idempotency-Key repeated with another envelope is a
 * client bug, refused (550 5.5.0; 409 on the API) rather than answered as if it had been sent.
 */
import { createHash } from 'node:crypto';
import type { RelayConfig } from '../config/schema.js';
import type { IdempotencyStore } from '../queue/storage.js';
import { headerEndOf } from '../envelope/header.js';
import { reply } from './replies.js';

const LF = 0x0a;

/**
 * Removes every Idempotency-Key field (with its folded lines) from the header of a CRLF message,
 * returning the message without it and the first key's value.
 */
export function takeIdempotencyKey(message: Buffer): { message: Buffer; key: string | undefined } {
  const headerEnd = headerEndOf(message);
  const kept: Buffer[] = [];
  let key: string | undefined;
  let dropping = false;
  let inFirstKey = false;
  for (let start = 0; start < headerEnd;) {
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

/**
 * The keys a submission is known by: its Idempotency-Key, that key with the envelope (to tell a
 * replay from a conflicting reuse), and its client-supplied Message-ID with the envelope.
 */
export function idempotencyKeys(options: {
  key: string | undefined;
  clientMessageId: string | undefined;
  mailFrom: string;
  recipients: string[];
}): string[] {
  const envelope = createHash('sha256')
    .update([options.mailFrom, ...options.recipients.map((r) => r.toLowerCase()).sort()].join('\n'))
    .digest('base64url');
  const keys: string[] = [];
  if (options.key) keys.push(`key:${options.key}`, `${ENVELOPE_OF}${envelope} ${options.key}`);
  if (options.clientMessageId) keys.push(`mid:${options.clientMessageId} ${envelope}`);
  return keys;
}

const ENVELOPE_OF = 'key-envelope:';

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
        if (!queueId) continue;
        await this.checkSameEnvelope(credential, keys, queueId, since);
        return { queueId, duplicate: true };
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

  /** A repeated Idempotency-Key must come with the envelope it was first used with. */
  async checkSameEnvelope(credential: string, keys: string[], queueId: string, since: number): Promise<void> {
    const envelopeKey = keys.find((k) => k.startsWith(ENVELOPE_OF));
    if (!envelopeKey || (await this.store.find(credential, envelopeKey, since)) === queueId) return;
    const key = envelopeKey.slice(envelopeKey.indexOf(' ') + 1);
    throw reply(550, '5.5.0', `Idempotency-Key "${key}" was already used for message ${queueId} with other recipients or another sender`);
  }

  /** Keys recorded before this are forgotten. */
  since(now = Date.now()): number {
    return now - this.config.limits.idempotency_window;
  }
}
