/**
 * The storage contract: what every backend of src/queue/storage.ts must do, run against each
 * of them by contract.test.ts. Times are fixed (`now` arguments and stored epoch ms), so no test
 * waits for the clock. Each test gets a fresh, empty storage from `open`.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  NodeNameInUseError,
  type DeliveryJob,
  type EventRecord,
  type NewEvent,
  type NewMessage,
  type RecipientOutcome,
  type Storage,
} from '../../src/queue/storage.js';
import { joinParts, partsOf, partsSize } from '../../src/envelope/header.js';
import { PIECE_BYTES } from '../../src/queue/pieces.js';
import { storedBody } from '../helpers/relay.js';

export interface OpenedStorage {
  storage: Storage;
  /** Removes what backs the storage (the contract has closed it already). */
  cleanup(): Promise<void>;
}

/** A fixed time, on a minute boundary (for buckets), well after the wall clock. */
export const T0 = Date.UTC(2030, 0, 15, 12, 0, 0);
const DAY = 86_400_000;
const lease = (owner: string, ms = 60_000) => ({ owner, ms });

let sequence = 0;

/** A submission: one recipient at example.org by credential "app", received at T0. */
export function newMessage(overrides: Partial<NewMessage> = {}): NewMessage {
  const n = ++sequence;
  return {
    queueId: `Q${String(n).padStart(6, '0')}${Math.random().toString(36).slice(2, 8).toUpperCase()}`,
    messageId: `<m${n}@acme.test>`,
    credential: 'app',
    mailFrom: 'sender@acme.test',
    recipients: ['rcpt@example.org'],
    // 8-bit content: the body is stored as bytes, not text.
    body: partsOf(Buffer.concat([Buffer.from(`Subject: test ${n}\r\n\r\nbody ${n} `), Buffer.from([0x00, 0xc3, 0xa9, 0xff, 0x0d, 0x0a])])),
    receivedAt: T0,
    expiresAt: T0 + 5 * DAY,
    ...overrides,
  };
}

function event(overrides: Partial<NewEvent> = {}): NewEvent {
  return {
    queueId: 'QEVENT',
    messageId: '<e@acme.test>',
    credential: 'app',
    recipient: 'someone@example.org',
    status: 'delivered',
    smtpCode: 250,
    response: '250 ok',
    category: null,
    at: T0,
    ...overrides,
  };
}

const ids = (events: EventRecord[]) => events.map((e) => e.id);
const sorted = <T>(list: T[], key: (item: T) => string) => [...list].sort((a, b) => key(a).localeCompare(key(b)));

/** Opens a fresh storage before each test (handing it to `use`), and closes and removes it after. */
export function storagePerTest(open: () => Promise<OpenedStorage>, use: (storage: Storage) => void): void {
  let opened: OpenedStorage | undefined;
  beforeEach(async () => {
    opened = undefined;
    opened = await open();
    use(opened.storage);
  });
  afterEach(async () => {
    if (!opened) return; // open() failed: that is the error to see
    await opened.storage.close();
    await opened.cleanup();
  });
}

export function storageContract(name: string, open: () => Promise<OpenedStorage>): void {
  describe(`storage contract: ${name}`, () => {
    let opened: OpenedStorage | undefined;
    let s: Storage;
    let closed: boolean;

    beforeEach(async () => {
      opened = undefined;
      opened = await open();
      s = opened.storage;
      closed = false;
    });

    afterEach(async () => {
      if (!opened) return; // open() failed: that is the error to see
      if (!closed) await s.close();
      await opened.cleanup();
    });

    const enqueued = async (overrides: Partial<NewMessage> = {}) => {
      const message = newMessage(overrides);
      expect(await s.queue.enqueue(message)).toEqual({ status: 'queued' });
      return message;
    };

    /** Claims everything due at `now` for `owner` and returns the one job for `queueId`. */
    const claimJob = async (queueId: string, now = T0, owner = 'node-a'): Promise<DeliveryJob> => {
      const jobs = await s.queue.claimDue(now, 100, lease(owner));
      const job = jobs.find((j) => j.queueId === queueId);
      expect(job, `a job for ${queueId}`).toBeDefined();
      return job!;
    };

    const outcome = (job: DeliveryJob, address: string, status: RecipientOutcome['status'], extra: Partial<RecipientOutcome> = {}) => {
      const recipient = job.recipients.find((r) => r.address === address);
      expect(recipient, `${address} in the job`).toBeDefined();
      const code = { delivered: 250, deferred: 451, bounced: 550, expired: null }[status];
      return {
        recipientId: recipient!.id,
        status,
        ...(code === null ? {} : { smtpCode: code, response: `${code} reply for ${address}` }),
        ...extra,
      };
    };

    // ---- Queue ---------------------------------------------------------------------------------

    describe('queue', () => {
      it('commits the message, its recipients and their queued events', async () => {
        const m = await enqueued({ recipients: ['one@example.org', 'Two@Example.NET'] });
        const stored = await s.queue.message(m.queueId);
        expect(stored).toEqual({
          queueId: m.queueId,
          messageId: m.messageId,
          credential: 'app',
          mailFrom: 'sender@acme.test',
          size: partsSize(m.body),
          receivedAt: T0,
          recipients: ['one@example.org', 'Two@Example.NET'].map((address) => ({
            address,
            status: 'queued',
            attempts: 0,
            nextAttemptAt: T0,
            lastCode: null,
            lastResponse: null,
            leaseOwner: null,
          })),
        });
        expect(await storedBody(s.queue, m.queueId)).toEqual(joinParts(m.body));
        const events = await s.events.query({ queueId: m.queueId, limit: 10 });
        const queued = {
          queueId: m.queueId,
          messageId: m.messageId,
          credential: 'app',
          status: 'queued',
          smtpCode: null,
          response: null,
          category: null,
          at: T0,
          tags: [],
        };
        expect(events.map(({ id: _, ...e }) => e)).toEqual([
          { ...queued, recipient: 'one@example.org', domain: 'example.org' },
          { ...queued, recipient: 'Two@Example.NET', domain: 'example.net' },
        ]);
        expect(await s.queue.message('NOSUCHID')).toBeUndefined();
        expect(await s.queue.body('NOSUCHID')).toBeUndefined();
      });

      it('keeps a body bigger than a piece whole, and drops its pieces once the message is final or deleted', async () => {
        // Two and a half pieces of 8-bit bytes, in the 64 KB chunks a listener reads.
        const head = Buffer.from('Subject: big\r\n\r\n');
        const bytes = randomBytes(Math.floor(PIECE_BYTES * 2.5));
        const chunks = Array.from({ length: Math.ceil(bytes.length / 65_536) }, (_, i) => bytes.subarray(i * 65_536, (i + 1) * 65_536));
        const whole = Buffer.concat([head, bytes]);
        const m = await enqueued({ body: { head, rest: chunks } });
        expect((await s.queue.message(m.queueId))!.size).toBe(whole.length);
        const stored = (await s.queue.body(m.queueId))!;
        expect(stored.head.toString()).toBe(head.toString());
        expect(joinParts(stored).equals(whole)).toBe(true);

        const job = await claimJob(m.queueId);
        await s.queue.recordAttempt({ job, outcomes: [outcome(job, 'rcpt@example.org', 'delivered')], suppressions: [] });
        expect(await s.queue.body(m.queueId)).toBeUndefined();

        const deleted = await enqueued({ body: { head, rest: chunks } });
        expect(await s.queue.delete(deleted.queueId)).toBe(true);
        expect(await s.queue.body(deleted.queueId)).toBeUndefined();
      });

      it('claims due recipients grouped by message and domain, leased to the owner', async () => {
        const m1 = await enqueued({ recipients: ['x@a.test', 'y@a.test', 'z@b.test'] });
        const m2 = await enqueued({ recipients: ['w@a.test'], receivedAt: T0 + 1000 });

        const jobs = await s.queue.claimDue(T0, 10, lease('node-a'));
        expect(sorted(jobs, (j) => j.domain)).toEqual([
          {
            queueId: m1.queueId,
            messageId: m1.messageId,
            credential: 'app',
            mailFrom: 'sender@acme.test',
            domain: 'a.test',
            recipients: [
              { id: expect.any(Number), address: 'x@a.test', attempts: 0 },
              { id: expect.any(Number), address: 'y@a.test', attempts: 0 },
            ],
            receivedAt: T0,
            expiresAt: m1.expiresAt,
          },
          expect.objectContaining({
            queueId: m1.queueId,
            domain: 'b.test',
            recipients: [{ id: expect.any(Number), address: 'z@b.test', attempts: 0 }],
          }),
        ]);
        const stored = await s.queue.message(m1.queueId);
        expect(stored!.recipients.map((r) => r.leaseOwner)).toEqual(['node-a', 'node-a', 'node-a']);

        // m2 comes due later; m1's recipients are leased.
        expect(await s.queue.claimDue(T0 + 999, 10, lease('node-a'))).toEqual([]);
        const later = await s.queue.claimDue(T0 + 1000, 10, lease('node-b'));
        expect(later.map((j) => [j.queueId, j.domain])).toEqual([[m2.queueId, 'a.test']]);
      });

      it('claims at most `limit` jobs, earliest due first', async () => {
        const late = await enqueued({ receivedAt: T0 + 20 });
        const early = await enqueued({ receivedAt: T0 + 10 });
        const first = await s.queue.claimDue(T0 + 100, 1, lease('node-a'));
        expect(first.map((j) => j.queueId)).toEqual([early.queueId]);
        const second = await s.queue.claimDue(T0 + 100, 5, lease('node-a'));
        expect(second.map((j) => j.queueId)).toEqual([late.queueId]);
        expect(await s.queue.claimDue(T0 + 100, 5, lease('node-a'))).toEqual([]);
      });

      it('records outcomes, and drops the body once no recipient is pending', async () => {
        const m = await enqueued({ recipients: ['ok@example.org', 'later@example.org', 'gone@example.org'] });
        const other = await enqueued({ recipients: ['other@example.org'] });
        const job = await claimJob(m.queueId);

        await s.queue.recordAttempt({
          job,
          outcomes: [
            outcome(job, 'ok@example.org', 'delivered', { category: 'ok' }),
            outcome(job, 'later@example.org', 'deferred', { nextAttemptAt: T0 + 60_000, category: 'greylisted' }),
            outcome(job, 'gone@example.org', 'bounced', { category: 'bad-mailbox' }),
          ],
          suppressions: [{ address: 'Gone@Example.org', reason: '550 no such user', credential: null }],
        });
        expect((await s.queue.message(other.queueId))!.recipients[0]).toMatchObject({ status: 'queued', attempts: 0 });

        const stored = (await s.queue.message(m.queueId))!;
        const after = (address: string, status: string, lastCode: number, nextAttemptAt: number | null) => ({
          address,
          status,
          attempts: 1,
          nextAttemptAt,
          lastCode,
          lastResponse: `${lastCode} reply for ${address}`,
          leaseOwner: null,
        });
        expect(stored.recipients).toEqual([
          after('ok@example.org', 'delivered', 250, null),
          after('later@example.org', 'deferred', 451, T0 + 60_000),
          after('gone@example.org', 'bounced', 550, null),
        ]);
        expect(await storedBody(s.queue, m.queueId)).toEqual(joinParts(m.body));
        const events = await s.events.query({ queueId: m.queueId, limit: 10 });
        const attempted = events.filter((e) => e.status !== 'queued');
        expect(attempted.map((e) => [e.recipient, e.status, e.smtpCode, e.category, e.credential])).toEqual([
          ['ok@example.org', 'delivered', 250, 'ok', 'app'],
          ['later@example.org', 'deferred', 451, 'greylisted', 'app'],
          ['gone@example.org', 'bounced', 550, 'bad-mailbox', 'app'],
        ]);
        expect(await s.suppressions.isSuppressed('gone@example.org', 'app')).toBe(true);

        // The deferred recipient comes due again at its next attempt time.
        expect(await s.queue.claimDue(T0 + 59_999, 10, lease('node-a'))).toEqual([]);
        const retry = await claimJob(m.queueId, T0 + 60_000);
        expect(retry.recipients).toEqual([{ id: expect.any(Number), address: 'later@example.org', attempts: 1 }]);
        await s.queue.recordAttempt({ job: retry, outcomes: [outcome(retry, 'later@example.org', 'delivered')], suppressions: [] });

        expect(await s.queue.body(m.queueId)).toBeUndefined();
        expect((await s.queue.pending()).map((p) => p.queueId)).not.toContain(m.queueId);
        expect((await s.queue.message(m.queueId))!.recipients.map((r) => r.status)).toEqual(['delivered', 'delivered', 'bounced']);
      });

      it('applies only the outcomes of recipients in the job', async () => {
        const m = await enqueued();
        const other = await enqueued({ recipients: ['bystander@example.org'] });
        const jobs = await s.queue.claimDue(T0, 10, lease('node-a'));
        const job = jobs.find((j) => j.queueId === m.queueId)!;
        const otherId = jobs.find((j) => j.queueId === other.queueId)!.recipients[0]!.id;
        await s.queue.recordAttempt({
          job,
          outcomes: [outcome(job, 'rcpt@example.org', 'delivered'), { recipientId: otherId, status: 'bounced', smtpCode: 550 }],
          suppressions: [],
        });
        expect((await s.queue.message(other.queueId))!.recipients[0]).toMatchObject({ status: 'queued', attempts: 0 });
        expect(await s.events.query({ queueId: other.queueId, status: 'bounced', limit: 10 })).toEqual([]);
      });

      it('an expired outcome is final', async () => {
        const m = await enqueued();
        const job = await claimJob(m.queueId);
        await s.queue.recordAttempt({
          job,
          outcomes: [outcome(job, 'rcpt@example.org', 'expired', { category: 'expired' })],
          suppressions: [],
        });
        expect((await s.queue.message(m.queueId))!.recipients[0]).toMatchObject({ status: 'expired', nextAttemptAt: null, attempts: 1 });
        expect(await s.queue.body(m.queueId)).toBeUndefined();
        expect(await s.queue.nextDueAt()).toBeNull();
      });

      it('a lease keeps other owners off until it runs out, is renewed by the owner, and released at once', async () => {
        const m = await enqueued({ recipients: ['a@example.org', 'b@example.org'] });
        await claimJob(m.queueId, T0, 'node-a');
        expect(await s.queue.claimDue(T0 + 59_999, 10, lease('node-b'))).toEqual([]);
        // The lease ran out (a node that died): another node takes the recipients over.
        const taken = await claimJob(m.queueId, T0 + 60_000, 'node-b');
        expect(taken.recipients).toHaveLength(2);
        expect((await s.queue.message(m.queueId))!.recipients.map((r) => r.leaseOwner)).toEqual(['node-b', 'node-b']);

        await s.queue.renewLeases('node-b', T0 + 500_000);
        await s.queue.renewLeases('node-a', T0 + 900_000); // holds nothing any more
        expect(await s.queue.claimDue(T0 + 499_999, 10, lease('node-c'))).toEqual([]);
        expect(await s.queue.nextDueAt()).toBe(T0 + 500_000);

        expect(await s.queue.releaseLeases('node-a')).toBe(0);
        expect(await s.queue.releaseLeases('node-b')).toBe(2);
        expect((await s.queue.message(m.queueId))!.recipients.map((r) => r.leaseOwner)).toEqual([null, null]);
        expect(await s.queue.nextDueAt()).toBe(T0);
        expect((await claimJob(m.queueId, T0 + 1, 'node-c')).recipients).toHaveLength(2);
      });

      it('nextDueAt: the earliest unleased due time or lease end', async () => {
        expect(await s.queue.nextDueAt()).toBeNull();
        const m = await enqueued({ receivedAt: T0 + 5000 });
        expect(await s.queue.nextDueAt()).toBe(T0 + 5000);
        await claimJob(m.queueId, T0 + 5000);
        expect(await s.queue.nextDueAt()).toBe(T0 + 5000 + 60_000);
        await enqueued({ receivedAt: T0 + 7000 });
        expect(await s.queue.nextDueAt()).toBe(T0 + 7000);
      });

      it('retry makes pending recipients due now; delete removes the message', async () => {
        const m = await enqueued({ recipients: ['later@example.org', 'ok@example.org'] });
        const job = await claimJob(m.queueId);
        await s.queue.recordAttempt({
          job,
          outcomes: [
            outcome(job, 'later@example.org', 'deferred', { nextAttemptAt: T0 + 3_600_000 }),
            outcome(job, 'ok@example.org', 'delivered'),
          ],
          suppressions: [],
        });
        const before = Date.now();
        expect(await s.queue.retry(m.queueId)).toBe(true);
        const [later, ok] = (await s.queue.message(m.queueId))!.recipients;
        expect(later!.nextAttemptAt).toBeGreaterThanOrEqual(before);
        expect(later!.nextAttemptAt).toBeLessThanOrEqual(Date.now());
        expect(ok).toMatchObject({ status: 'delivered', nextAttemptAt: null });
        expect(await s.queue.retry('NOSUCHID')).toBe(false);

        expect(await s.queue.delete(m.queueId)).toBe(true);
        expect(await s.queue.message(m.queueId)).toBeUndefined();
        expect(await s.queue.body(m.queueId)).toBeUndefined();
        expect(await s.queue.pending()).toEqual([]);
        expect(await s.queue.claimDue(T0, 10, lease('node-a'))).toEqual([]);
        expect(await s.queue.delete(m.queueId)).toBe(false);
      });

      it('pending lists messages with recipients not yet final, oldest first', async () => {
        const newer = await enqueued({ receivedAt: T0 + 10, recipients: ['a@example.org', 'b@example.org'] });
        const older = await enqueued({ receivedAt: T0 });
        const done = await enqueued({ receivedAt: T0 + 5 });
        const job = await claimJob(done.queueId, T0 + 5);
        await s.queue.recordAttempt({ job, outcomes: [outcome(job, 'rcpt@example.org', 'delivered')], suppressions: [] });
        const newerJob = await claimJob(newer.queueId, T0 + 10);
        await s.queue.recordAttempt({ job: newerJob, outcomes: [outcome(newerJob, 'a@example.org', 'delivered')], suppressions: [] });

        const pending = await s.queue.pending();
        expect(pending.map((p) => p.queueId)).toEqual([older.queueId, newer.queueId]);
        // A pending message is listed with all its recipients, final ones included.
        expect(pending[1]!.recipients.map((r) => [r.address, r.status])).toEqual([
          ['a@example.org', 'delivered'],
          ['b@example.org', 'queued'],
        ]);
      });

      it('stats: counts by status and recipient domain, and the queue', async () => {
        const m = await enqueued({ recipients: ['a@one.test', 'b@one.test', 'c@two.test'], receivedAt: T0 + 1 });
        await enqueued({ recipients: ['d@two.test'], receivedAt: T0 + 2 });
        const jobs = await s.queue.claimDue(T0 + 1, 10, lease('node-a'));
        const one = jobs.find((j) => j.queueId === m.queueId && j.domain === 'one.test')!;
        await s.queue.recordAttempt({
          job: one,
          outcomes: [outcome(one, 'a@one.test', 'delivered'), outcome(one, 'b@one.test', 'bounced')],
          suppressions: [],
        });
        await s.events.record(event({ recipient: 'e@two.test', status: 'suppressed', smtpCode: 550, queueId: 'QSUPPRESSED' }));

        const stats = await s.queue.stats();
        expect(stats.byStatus).toMatchObject({ queued: 2, delivered: 1, bounced: 1, deferred: 0, expired: 0, suppressed: 1 });
        expect(stats.byDomain).toEqual({
          'one.test': { delivered: 1, bounced: 1 },
          'two.test': { queued: 2, suppressed: 1 },
        });
        expect(stats.queue).toEqual({ messages: 2, recipientsPending: 2, oldestReceivedAt: T0 + 1 });
      });

      it('purgeFinished removes only finished messages received before the cutoff, oldest first, up to the limit', async () => {
        const finish = async (m: NewMessage) => {
          const job = await claimJob(m.queueId, m.receivedAt);
          await s.queue.recordAttempt({ job, outcomes: [outcome(job, 'rcpt@example.org', 'delivered')], suppressions: [] });
        };
        const oldest = await enqueued({ receivedAt: T0 });
        const old = await enqueued({ receivedAt: T0 + 1 });
        const pending = await enqueued({ receivedAt: T0 + 2 });
        const recent = await enqueued({ receivedAt: T0 + 10_000 });
        await finish(oldest);
        await finish(old);
        await finish(recent);

        expect(await s.queue.purgeFinished(T0 + 5000, 1)).toBe(1);
        expect(await s.queue.message(oldest.queueId)).toBeUndefined();
        expect(await s.queue.message(old.queueId)).toBeDefined();
        expect(await s.queue.purgeFinished(T0 + 5000, 10)).toBe(1);
        expect(await s.queue.message(old.queueId)).toBeUndefined();
        expect(await s.queue.message(pending.queueId)).toBeDefined();
        expect(await s.queue.message(recent.queueId)).toBeDefined();
        expect(await s.queue.purgeFinished(T0 + 5000, 10)).toBe(0);
        // The events stay (they have their own retention).
        expect(await s.events.query({ queueId: oldest.queueId, limit: 10 })).toHaveLength(2);
      });

      it('close() waits for enqueues already submitted', async () => {
        const m = newMessage();
        const result = s.queue.enqueue(m);
        closed = true;
        await s.close();
        expect(await result).toEqual({ status: 'queued' });
      });
    });

    // ---- Idempotency and quotas ----------------------------------------------------------------

    describe('idempotency and quotas', () => {
      it('a key recorded within the window makes a duplicate, and nothing of it is stored', async () => {
        const first = await enqueued({ idempotencyKeys: ['key:order-1'], idempotencySince: T0 - 60_000 });
        const again = newMessage({ idempotencyKeys: ['key:fresh', 'key:order-1'], idempotencySince: T0 - 60_000, receivedAt: T0 + 1 });
        expect(await s.queue.enqueue(again)).toEqual({ status: 'duplicate', queueId: first.queueId });
        expect(await s.queue.message(again.queueId)).toBeUndefined();
        expect(await s.idempotency.find('app', 'key:fresh', 0)).toBeUndefined();
        expect(await s.limits.usage('app', T0)).toEqual({ day: 1, month: 1 });
        expect(await s.events.query({ queueId: again.queueId, limit: 10 })).toEqual([]);

        // Keys belong to a credential.
        await enqueued({ credential: 'other', idempotencyKeys: ['key:order-1'], idempotencySince: T0 - 60_000 });
        expect(await s.idempotency.find('app', 'key:order-1', T0)).toBe(first.queueId);
        expect(await s.idempotency.find('app', 'key:order-1', T0 + 1)).toBeUndefined();
      });

      it('a key recorded before the window can be used again', async () => {
        await enqueued({ idempotencyKeys: ['key:k'], idempotencySince: T0 - 60_000 });
        const later = await enqueued({ idempotencyKeys: ['key:k'], idempotencySince: T0 + 5000, receivedAt: T0 + 10_000 });
        expect(await s.idempotency.find('app', 'key:k', T0)).toBe(later.queueId);
      });

      it('concurrent submissions with one key: one is queued, the others are its duplicates', async () => {
        const messages = Array.from({ length: 6 }, () => newMessage({ idempotencyKeys: ['key:same'], idempotencySince: T0 - 1 }));
        const results = await Promise.all(messages.map((m) => s.queue.enqueue(m)));
        const queued = messages.filter((_, i) => results[i]!.status === 'queued');
        expect(queued).toHaveLength(1);
        const others = results.filter((r) => r.status !== 'queued');
        expect(others).toEqual(Array(5).fill({ status: 'duplicate', queueId: queued[0]!.queueId }));
        expect(await s.limits.usage('app', T0)).toEqual({ day: 1, month: 1 });
      });

      it('a daily quota holds exactly under concurrent submissions', async () => {
        const messages = Array.from({ length: 20 }, () => newMessage({ quota: { daily: 7, monthly: null } }));
        const results = await Promise.all(messages.map((m) => s.queue.enqueue(m)));
        expect(results.filter((r) => r.status === 'queued')).toHaveLength(7);
        expect(results.filter((r) => r.status !== 'queued')).toEqual(Array(13).fill({ status: 'over-quota', period: 'daily' }));
        expect(await s.limits.usage('app', T0)).toEqual({ day: 7, month: 7 });
        expect(await s.queue.pending()).toHaveLength(7);
      });

      it('a monthly quota; a refused message leaves no usage, keys or rows', async () => {
        await enqueued({ recipients: ['a@example.org', 'b@example.org'], quota: { daily: null, monthly: 3 } });
        const over = newMessage({
          recipients: ['c@example.org', 'd@example.org'],
          quota: { daily: 10, monthly: 3 },
          idempotencyKeys: ['key:big'],
          idempotencySince: T0 - 1,
        });
        expect(await s.queue.enqueue(over)).toEqual({ status: 'over-quota', period: 'monthly' });
        expect(await s.limits.usage('app', T0)).toEqual({ day: 2, month: 2 });
        expect(await s.idempotency.find('app', 'key:big', 0)).toBeUndefined();
        expect(await s.queue.message(over.queueId)).toBeUndefined();
        // Both periods over: the day is named.
        expect(await s.queue.enqueue(newMessage({ recipients: ['e@x.test', 'f@x.test'], quota: { daily: 2, monthly: 3 } }))).toEqual({
          status: 'over-quota',
          period: 'daily',
        });
        // One more fits exactly.
        await enqueued({ quota: { daily: 10, monthly: 3 }, idempotencyKeys: ['key:big'], idempotencySince: T0 - 1 });
        expect(await s.limits.usage('app', T0)).toEqual({ day: 3, month: 3 });
      });

      it('quotas count per credential', async () => {
        await enqueued({ quota: { daily: 1, monthly: null } });
        await enqueued({ credential: 'other', quota: { daily: 1, monthly: null } });
        expect(await s.queue.enqueue(newMessage({ quota: { daily: 1, monthly: null } }))).toEqual({
          status: 'over-quota',
          period: 'daily',
        });
      });

      it('usage is counted without a quota, per UTC day and month', async () => {
        await enqueued({ recipients: ['a@example.org', 'b@example.org'] });
        await enqueued({ recipients: ['c@example.org', 'd@example.org', 'e@example.org'], receivedAt: T0 + DAY });
        expect(await s.limits.usage('app', T0)).toEqual({ day: 2, month: 5 });
        expect(await s.limits.usage('app', T0 + DAY)).toEqual({ day: 3, month: 5 });
        expect(await s.limits.usage('app', T0 + 40 * DAY)).toEqual({ day: 0, month: 0 });
        expect(await s.limits.usage('nobody', T0)).toEqual({ day: 0, month: 0 });
      });
    });

    // ---- Suppressions --------------------------------------------------------------------------

    describe('suppressions', () => {
      it('global and per-credential entries, addresses compared lower-cased', async () => {
        expect(await s.suppressions.add({ address: 'Bounce@Example.org', reason: 'hard bounce', credential: null })).toBe(true);
        expect(await s.suppressions.add({ address: 'bounce@example.ORG', reason: 'again', credential: null })).toBe(false);
        expect(await s.suppressions.isSuppressed('BOUNCE@example.org', 'app')).toBe(true);
        expect(await s.suppressions.isSuppressed('bounce@example.org', 'other')).toBe(true);

        expect(await s.suppressions.add({ address: 'Unsub@Example.org', reason: 'unsubscribed', credential: 'app' })).toBe(true);
        expect(await s.suppressions.add({ address: 'unsub@example.org', reason: 'other app', credential: 'other' })).toBe(true);
        expect(await s.suppressions.isSuppressed('unsub@example.org', 'app')).toBe(true);
        expect(await s.suppressions.isSuppressed('UNSUB@example.org', 'other')).toBe(true);
        expect(await s.suppressions.isSuppressed('unsub@example.org', 'third')).toBe(false);
        expect(await s.suppressions.isSuppressed('nobody@example.org', 'app')).toBe(false);

        const all = await s.suppressions.list();
        expect(
          sorted(all, (e) => `${e.address} ${e.credential}`).map(
            ({ createdAt, ...e }) => (expect(createdAt).toEqual(expect.any(Number)), e),
          ),
        ).toEqual([
          { address: 'bounce@example.org', reason: 'hard bounce', credential: null },
          { address: 'unsub@example.org', reason: 'unsubscribed', credential: 'app' },
          { address: 'unsub@example.org', reason: 'other app', credential: 'other' },
        ]);
        const scoped = await s.suppressions.list({ credential: 'app' });
        expect(scoped.map((e) => [e.address, e.credential])).toContainEqual(['unsub@example.org', 'app']);
        expect(scoped.every((e) => e.credential !== 'other')).toBe(true);

        expect(await s.suppressions.remove('unsub@example.org', null)).toBe(false);
        expect(await s.suppressions.remove('UNSUB@example.org', 'app')).toBe(true);
        expect(await s.suppressions.isSuppressed('unsub@example.org', 'app')).toBe(false);
        expect(await s.suppressions.isSuppressed('unsub@example.org', 'other')).toBe(true);
        expect(await s.suppressions.remove('bounce@example.org', null)).toBe(true);
        expect(await s.suppressions.isSuppressed('bounce@example.org', 'app')).toBe(false);
      });

      it('suppressions decided with an attempt are kept in their scope', async () => {
        const m = await enqueued({ recipients: ['a@example.org', 'b@example.org'] });
        const job = await claimJob(m.queueId);
        await s.queue.recordAttempt({
          job,
          outcomes: [outcome(job, 'a@example.org', 'bounced'), outcome(job, 'b@example.org', 'bounced')],
          suppressions: [
            { address: 'A@example.org', reason: 'global', credential: null },
            { address: 'b@example.org', reason: 'scoped', credential: 'app' },
          ],
        });
        expect(await s.suppressions.isSuppressed('a@example.org', 'other')).toBe(true);
        expect(await s.suppressions.isSuppressed('b@example.org', 'app')).toBe(true);
        expect(await s.suppressions.isSuppressed('b@example.org', 'other')).toBe(false);
      });
    });

    // ---- Events --------------------------------------------------------------------------------

    describe('events', () => {
      it('query: filters, cursor, order, limit and credential scope', async () => {
        await s.events.record(event({ recipient: 'Ann@One.test', status: 'delivered', at: T0, queueId: 'Q1' }));
        await s.events.record(event({ recipient: 'bob@two.test', status: 'bounced', smtpCode: 550, at: T0 + 10, queueId: 'Q1' }));
        await s.events.record(
          event({ recipient: 'ann@one.test', status: 'deferred', smtpCode: 451, at: T0 + 20, queueId: 'Q2', credential: 'other' }),
        );
        await s.events.record(
          event({ recipient: 'cy@one.test', status: 'suppressed', smtpCode: 550, at: T0 + 30, queueId: 'Q3', category: 'suppressed' }),
        );

        const all = await s.events.query({ limit: 100 });
        expect(all.map((e) => e.at)).toEqual([T0, T0 + 10, T0 + 20, T0 + 30]);
        expect(ids(all)).toEqual([...ids(all)].sort((a, b) => a - b));
        expect(all[3]).toEqual({
          id: expect.any(Number),
          queueId: 'Q3',
          messageId: '<e@acme.test>',
          credential: 'app',
          recipient: 'cy@one.test',
          domain: 'one.test',
          status: 'suppressed',
          smtpCode: 550,
          response: '250 ok',
          category: 'suppressed',
          at: T0 + 30,
          tags: [],
        });
        const [a, b, c, d] = ids(all) as [number, number, number, number];

        expect(ids(await s.events.query({ afterId: b, limit: 100 }))).toEqual([c, d]);
        expect(ids(await s.events.query({ since: T0 + 10, limit: 100 }))).toEqual([b, c, d]);
        expect(ids(await s.events.query({ status: 'bounced', limit: 100 }))).toEqual([b]);
        expect(ids(await s.events.query({ domain: 'ONE.test', limit: 100 }))).toEqual([a, c, d]);
        expect(ids(await s.events.query({ recipient: 'ANN@one.TEST', limit: 100 }))).toEqual([a, c]);
        expect(ids(await s.events.query({ queueId: 'Q1', limit: 100 }))).toEqual([a, b]);
        expect(ids(await s.events.query({ credential: 'app', limit: 100 }))).toEqual([a, b, d]);
        expect(ids(await s.events.query({ credential: 'other', limit: 100 }))).toEqual([c]);
        expect(ids(await s.events.query({ credential: 'nobody', limit: 100 }))).toEqual([]);
        expect(ids(await s.events.query({ newestFirst: true, limit: 2 }))).toEqual([d, c]);
        expect(ids(await s.events.query({ limit: 2 }))).toEqual([a, b]);
        expect(ids(await s.events.query({ domain: 'one.test', credential: 'app', since: T0 + 1, limit: 100 }))).toEqual([d]);
      });

      it('record() defaults the time to now', async () => {
        const before = Date.now();
        await s.events.record(event({ at: undefined }));
        const [e] = await s.events.query({ limit: 1 });
        expect(e!.at).toBeGreaterThanOrEqual(before);
        expect(e!.at).toBeLessThanOrEqual(Date.now());
      });

      it('buckets: counts per time bucket, domain and status, optionally for one credential', async () => {
        await s.events.record(event({ recipient: 'a@one.test', status: 'delivered', at: T0 }));
        await s.events.record(event({ recipient: 'b@one.test', status: 'delivered', at: T0 + 59_999 }));
        await s.events.record(event({ recipient: 'c@two.test', status: 'bounced', at: T0 + 60_000 }));
        await s.events.record(event({ recipient: 'd@one.test', status: 'delivered', at: T0 + 60_001, credential: 'other' }));
        await s.events.record(event({ recipient: 'e@one.test', status: 'delivered', at: T0 + 120_000 }));
        await s.events.record(event({ recipient: 'f@one.test', status: 'delivered', at: T0 - 1 }));

        const key = (b: { start: number; domain: string; status: string }) => `${b.start} ${b.domain} ${b.status}`;
        expect(sorted(await s.events.buckets(T0, T0 + 120_000, 60_000), key)).toEqual([
          { start: T0, domain: 'one.test', status: 'delivered', count: 2 },
          { start: T0 + 60_000, domain: 'one.test', status: 'delivered', count: 1 },
          { start: T0 + 60_000, domain: 'two.test', status: 'bounced', count: 1 },
        ]);
        expect(sorted(await s.events.buckets(T0, T0 + 120_000, 60_000, 'app'), key)).toEqual([
          { start: T0, domain: 'one.test', status: 'delivered', count: 2 },
          { start: T0 + 60_000, domain: 'two.test', status: 'bounced', count: 1 },
        ]);
        expect(await s.events.buckets(T0, T0 + 120_000, 60_000, 'nobody')).toEqual([]);
      });

      it('lastFailures: the latest bounced, deferred or expired event per domain in the window', async () => {
        await s.events.record(event({ recipient: 'a@one.test', status: 'deferred', smtpCode: 451, at: T0 }));
        await s.events.record(event({ recipient: 'b@one.test', status: 'bounced', smtpCode: 550, at: T0 + 10 }));
        await s.events.record(event({ recipient: 'c@one.test', status: 'delivered', at: T0 + 20 }));
        await s.events.record(event({ recipient: 'd@two.test', status: 'expired', smtpCode: null, at: T0 + 30 }));
        await s.events.record(event({ recipient: 'e@two.test', status: 'deferred', smtpCode: 421, at: T0 + 40, credential: 'other' }));
        await s.events.record(event({ recipient: 'f@three.test', status: 'bounced', at: T0 + 1000 }));

        const window = await s.events.lastFailures(T0, T0 + 1000);
        expect(sorted(window, (e) => e.domain).map((e) => [e.domain, e.recipient, e.status])).toEqual([
          ['one.test', 'b@one.test', 'bounced'],
          ['two.test', 'e@two.test', 'deferred'],
        ]);
        const scoped = await s.events.lastFailures(T0, T0 + 1000, 'app');
        expect(sorted(scoped, (e) => e.domain).map((e) => e.recipient)).toEqual(['b@one.test', 'd@two.test']);
      });

      it('purge removes up to `limit` events older than the cutoff, with what the webhooks were owed of them', async () => {
        await s.webhooks.add('https://hooks.test/a', 'secret', ['bounced']);
        await s.events.record(event({ status: 'bounced', at: T0 }));
        await s.events.record(event({ status: 'bounced', at: T0 + 1 }));
        await s.events.record(event({ status: 'bounced', at: T0 + 2 }));
        await s.events.record(event({ status: 'bounced', at: T0 + 1000 }));
        expect((await s.webhooks.backlog()).count).toBe(4);

        expect(await s.events.purge(T0 + 1000, 2)).toBe(2);
        expect((await s.events.query({ limit: 10 })).map((e) => e.at)).toEqual([T0 + 2, T0 + 1000]);
        expect(await s.events.purge(T0 + 1000, 10)).toBe(1);
        expect(await s.events.purge(T0 + 1000, 10)).toBe(0);
        expect(await s.webhooks.backlog()).toEqual({ count: 1, oldestAt: T0 + 1000 });
        const [entry] = await s.webhooks.claimDue(T0 + 1000, 10, lease('node-a'));
        expect(entry!.event.at).toBe(T0 + 1000);
      });
    });

    // ---- Domains and credentials ---------------------------------------------------------------

    const newDomain = (name: string) => ({
      name,
      selector: 'relay1',
      algorithm: 'ed25519' as const,
      privateKeyPem: `-----BEGIN PRIVATE KEY-----\n${name}\n-----END PRIVATE KEY-----\n`,
      publicKey: `pk-${name}`,
      verificationToken: `token-${name}`,
    });

    describe('domains and credentials', () => {
      it('domains: add, get, list, verification, remove', async () => {
        await s.domains.add(newDomain('Acme.TEST'));
        await s.domains.add(newDomain('beta.test'));
        const acme = await s.domains.get('acme.test');
        expect(acme).toEqual({
          ...newDomain('Acme.TEST'),
          name: 'acme.test',
          verified: false,
          checks: null,
          createdAt: expect.any(Number),
          verifiedAt: null,
        });
        expect(await s.domains.get('ACME.test')).toEqual(acme);
        expect(await s.domains.get('nope.test')).toBeUndefined();
        expect((await s.domains.list()).map((d) => d.name)).toEqual(['acme.test', 'beta.test']);

        const checks = { dkim: { status: 'found' }, spf: { status: 'missing', expected: 'v=spf1 -all' } };
        await s.domains.setVerification('acme.test', true, checks);
        const verified = (await s.domains.get('acme.test'))!;
        expect(verified).toMatchObject({ verified: true, checks, verifiedAt: expect.any(Number) });
        await s.domains.setVerification('ACME.test', true, { dkim: { status: 'found' } });
        expect((await s.domains.get('acme.test'))!.verifiedAt).toBe(verified.verifiedAt);
        await s.domains.setVerification('acme.test', false, { dkim: { status: 'mismatch' } });
        expect(await s.domains.get('acme.test')).toMatchObject({
          verified: false,
          verifiedAt: null,
          checks: { dkim: { status: 'mismatch' } },
        });

        await s.credentials.add({ name: 'app', username: 'app-user', passwordHash: 'hash', domains: ['acme.test', 'beta.test'] });
        expect(await s.domains.remove('Acme.test')).toBe(true);
        expect(await s.domains.remove('acme.test')).toBe(false);
        expect((await s.credentials.get('app'))!.domains).toEqual(['beta.test']);
        expect((await s.domains.list()).map((d) => d.name)).toEqual(['beta.test']);
      });

      it('credentials: add, look up, list, revoke', async () => {
        await s.credentials.add({
          name: 'billing',
          username: 'billing-user',
          passwordHash: 'scrypt$1',
          domains: ['B.test', 'a.test', 'b.test'],
        });
        await s.credentials.add({ name: 'app', username: 'app-user', passwordHash: 'scrypt$2', domains: [] });
        const billing = await s.credentials.get('billing');
        expect(billing).toEqual({
          name: 'billing',
          username: 'billing-user',
          passwordHash: 'scrypt$1',
          domains: ['a.test', 'b.test'],
          createdAt: expect.any(Number),
          revokedAt: null,
        });
        expect(await s.credentials.byUsername('billing-user')).toEqual(billing);
        expect(await s.credentials.byUsername('nobody')).toBeUndefined();
        expect(await s.credentials.get('nobody')).toBeUndefined();
        expect((await s.credentials.list()).map((c) => [c.name, c.domains])).toEqual([
          ['app', []],
          ['billing', ['a.test', 'b.test']],
        ]);
        await expect(s.credentials.add({ name: 'billing2', username: 'billing-user', passwordHash: 'x', domains: [] })).rejects.toThrow();

        expect(await s.credentials.revoke('billing')).toBe(true);
        expect(await s.credentials.revoke('billing')).toBe(false);
        expect(await s.credentials.revoke('nobody')).toBe(false);
        expect(await s.credentials.byUsername('billing-user')).toBeUndefined();
        expect((await s.credentials.get('billing'))!.revokedAt).toEqual(expect.any(Number));
        expect((await s.credentials.list()).map((c) => c.name)).toEqual(['app', 'billing']);
      });

      it('API keys find their active credential', async () => {
        await s.credentials.add({ name: 'app', username: 'app-user', passwordHash: 'h', domains: ['acme.test'] });
        await s.credentials.addApiKey('app', 'sha256-one');
        await s.credentials.addApiKey('app', 'sha256-two');
        expect((await s.credentials.byApiKey('sha256-one'))!.name).toBe('app');
        expect((await s.credentials.byApiKey('sha256-two'))!.domains).toEqual(['acme.test']);
        expect(await s.credentials.byApiKey('sha256-unknown')).toBeUndefined();
        await s.credentials.revoke('app');
        expect(await s.credentials.byApiKey('sha256-one')).toBeUndefined();
      });
    });

    // ---- Limits --------------------------------------------------------------------------------

    describe('limits', () => {
      beforeEach(async () => {
        await s.credentials.add({ name: 'app', username: 'app-user', passwordHash: 'h', domains: [] });
      });

      it('get and set change only the fields given', async () => {
        expect(await s.limits.get('app')).toEqual({ rate: null, daily: null, monthly: null });
        expect(await s.limits.get('nobody')).toEqual({ rate: null, daily: null, monthly: null });
        await s.limits.set('app', { daily: 100 });
        expect(await s.limits.get('app')).toEqual({ rate: null, daily: 100, monthly: null });
        await s.limits.set('app', { rate: { count: 20, perSeconds: 60 }, monthly: 2000 });
        expect(await s.limits.get('app')).toEqual({ rate: { count: 20, perSeconds: 60 }, daily: 100, monthly: 2000 });
        await s.limits.set('app', { daily: null });
        expect(await s.limits.get('app')).toEqual({ rate: { count: 20, perSeconds: 60 }, daily: null, monthly: 2000 });
        await s.limits.set('app', { rate: null });
        expect(await s.limits.get('app')).toEqual({ rate: null, daily: null, monthly: 2000 });
        await s.limits.set('app', {});
        expect(await s.limits.get('app')).toEqual({ rate: null, daily: null, monthly: 2000 });
      });

      it('takeTokens: a bucket that starts full, refills at the rate and holds one period', async () => {
        const rate = { count: 10, perSeconds: 1 };
        expect(await s.limits.takeTokens('app', rate, 11, T0)).toBe(false);
        expect(await s.limits.takeTokens('app', rate, 10, T0)).toBe(true);
        expect(await s.limits.takeTokens('app', rate, 1, T0)).toBe(false);
        expect(await s.limits.takeTokens('app', rate, 1, T0 + 99)).toBe(false);
        expect(await s.limits.takeTokens('app', rate, 1, T0 + 100)).toBe(true);
        expect(await s.limits.takeTokens('app', rate, 1, T0 + 100)).toBe(false);
        expect(await s.limits.takeTokens('app', rate, 3, T0 + 400)).toBe(true);
        // Long idle: full again, never more.
        expect(await s.limits.takeTokens('app', rate, 10, T0 + 60_000)).toBe(true);
        expect(await s.limits.takeTokens('app', rate, 1, T0 + 60_000)).toBe(false);
        // Buckets are per credential.
        expect(await s.limits.takeTokens('other', rate, 10, T0 + 60_000)).toBe(true);
      });

      it('takeTokens under concurrent takes spends each token once', async () => {
        const rate = { count: 5, perSeconds: 3600 };
        const taken = await Promise.all(Array.from({ length: 12 }, () => s.limits.takeTokens('app', rate, 1, T0)));
        expect(taken.filter(Boolean)).toHaveLength(5);
      });

      it('login failures: counted since a time, per key in the order asked, cleared, pruned', async () => {
        const failures = async (key: string, since: number) => (await s.limits.loginFailures([key], since))[0];
        expect(await s.limits.recordLoginFailure('ip:192.0.2.1', T0, T0 - 1000)).toBe(1);
        expect(await s.limits.recordLoginFailure('ip:192.0.2.1', T0 + 500, T0 - 1000)).toBe(2);
        expect(await s.limits.recordLoginFailure('ip:192.0.2.1', T0 + 2000, T0 + 1000)).toBe(1);
        expect(await failures('ip:192.0.2.1', T0 - 1000)).toEqual({ count: 3, lastAt: T0 + 2000 });
        expect(await failures('ip:192.0.2.1', T0 + 1)).toEqual({ count: 2, lastAt: T0 + 2000 });
        expect(await failures('ip:198.51.100.7', T0 - 1000)).toEqual({ count: 0, lastAt: null });

        await s.limits.recordLoginFailure('user:app', T0 + 100, T0);
        expect(await s.limits.loginFailures(['ip:198.51.100.7', 'user:app', 'ip:192.0.2.1'], T0 - 1000)).toEqual([
          { count: 0, lastAt: null },
          { count: 1, lastAt: T0 + 100 },
          { count: 3, lastAt: T0 + 2000 },
        ]);
        await s.limits.clearLoginFailures('user:app');
        expect(await failures('user:app', 0)).toEqual({ count: 0, lastAt: null });

        await s.limits.prune(T0 + 1000);
        expect(await failures('ip:192.0.2.1', 0)).toEqual({ count: 1, lastAt: T0 + 2000 });
      });

      it('prune forgets idempotency keys recorded before the cutoff', async () => {
        const old = await enqueued({ idempotencyKeys: ['key:old'], idempotencySince: 0 });
        const recent = await enqueued({ idempotencyKeys: ['key:recent'], idempotencySince: 0, receivedAt: T0 + 5000 });
        await s.limits.prune(T0 + 1);
        expect(await s.idempotency.find('app', 'key:old', 0)).toBeUndefined();
        expect(await s.idempotency.find('app', 'key:recent', 0)).toBe(recent.queueId);
        expect(await s.queue.message(old.queueId)).toBeDefined();
      });
    });

    // ---- Templates -----------------------------------------------------------------------------

    it('templates: each add is the next version; get the latest or a given one; list the latest of each', async () => {
      expect(await s.templates.add({ name: 'welcome', subject: 'Hi {{name}}', text: 'v1', html: null })).toBe(1);
      expect(await s.templates.add({ name: 'welcome', subject: 'Hello {{name}}', text: 'v2', html: '<p>v2</p>' })).toBe(2);
      expect(await s.templates.add({ name: 'receipt', subject: 'Receipt', text: null, html: '<p>r</p>' })).toBe(1);
      expect(await s.templates.get('welcome')).toEqual({
        name: 'welcome',
        version: 2,
        subject: 'Hello {{name}}',
        text: 'v2',
        html: '<p>v2</p>',
        createdAt: expect.any(Number),
      });
      expect(await s.templates.get('welcome', 1)).toMatchObject({ version: 1, text: 'v1', html: null });
      expect(await s.templates.get('welcome', 3)).toBeUndefined();
      expect(await s.templates.get('nope')).toBeUndefined();
      expect((await s.templates.list()).map((t) => [t.name, t.version])).toEqual([
        ['receipt', 1],
        ['welcome', 2],
      ]);
    });

    // ---- Webhooks ------------------------------------------------------------------------------

    describe('webhooks', () => {
      it('add, list, remove', async () => {
        const a = await s.webhooks.add('https://hooks.test/a', 'sekrit', ['bounced', 'delivered']);
        expect(a).toEqual({
          id: expect.any(Number),
          url: 'https://hooks.test/a',
          secret: 'sekrit',
          events: ['bounced', 'delivered'],
          createdAt: expect.any(Number),
        });
        const b = await s.webhooks.add('https://hooks.test/b', 'other', ['complained']);
        expect(await s.webhooks.list()).toEqual([a, b]);
        expect(await s.webhooks.remove(a.id)).toBe(true);
        expect(await s.webhooks.remove(a.id)).toBe(false);
        expect(await s.webhooks.list()).toEqual([b]);
      });

      it('an event is owed to each webhook subscribed to its status, never for queued', async () => {
        const a = await s.webhooks.add('https://hooks.test/a', 'secret-a', ['bounced', 'delivered']);
        const b = await s.webhooks.add('https://hooks.test/b', 'secret-b', ['deferred', 'queued']);
        const c = await s.webhooks.add('https://hooks.test/c', 'secret-c', ['complained', 'unsubscribed', 'suppressed']);

        const m = await enqueued({ recipients: ['ok@example.org', 'later@example.org', 'gone@example.org'] });
        expect(await s.webhooks.backlog()).toEqual({ count: 0, oldestAt: null });
        const job = await claimJob(m.queueId);
        await s.queue.recordAttempt({
          job,
          outcomes: [
            outcome(job, 'ok@example.org', 'delivered'),
            outcome(job, 'later@example.org', 'deferred', { nextAttemptAt: T0 + 60_000 }),
            outcome(job, 'gone@example.org', 'bounced'),
          ],
          suppressions: [],
        });
        await s.events.record(
          event({ queueId: m.queueId, recipient: 'gone@example.org', status: 'complained', smtpCode: null, at: T0 + 5 }),
        );
        await s.events.record(event({ queueId: m.queueId, recipient: 'x@example.org', status: 'expired', smtpCode: null, at: T0 + 6 }));

        const backlog = await s.webhooks.backlog();
        expect(backlog.count).toBe(4);
        const entries = await s.webhooks.claimDue(T0 + 10, 100, lease('node-a', 30_000));
        expect(entries.map((e) => [e.webhookId, e.event.status, e.event.recipient]).sort()).toEqual(
          [
            [a.id, 'delivered', 'ok@example.org'],
            [a.id, 'bounced', 'gone@example.org'],
            [b.id, 'deferred', 'later@example.org'],
            [c.id, 'complained', 'gone@example.org'],
          ].sort(),
        );
        const complained = entries.find((e) => e.event.status === 'complained')!;
        expect(complained).toEqual({
          id: expect.any(Number),
          webhookId: c.id,
          url: 'https://hooks.test/c',
          secret: 'secret-c',
          attempts: 0,
          event: {
            id: expect.any(Number),
            queueId: m.queueId,
            messageId: '<e@acme.test>',
            credential: 'app',
            recipient: 'gone@example.org',
            domain: 'example.org',
            status: 'complained',
            smtpCode: null,
            response: '250 ok',
            category: null,
            at: T0 + 5,
            tags: [],
          },
        });
        const bounced = entries.find((e) => e.event.status === 'bounced')!;
        expect(bounced.event).toMatchObject({ queueId: m.queueId, messageId: m.messageId, credential: 'app', smtpCode: 550 });
      });

      it('claimDue leases entries; delivered removes one, failed schedules its next attempt', async () => {
        const hook = await s.webhooks.add('https://hooks.test/a', 'secret', ['bounced']);
        for (let i = 0; i < 3; i++) await s.events.record(event({ status: 'bounced', at: T0 + i, recipient: `r${i}@example.org` }));
        expect(await s.webhooks.backlog()).toEqual({ count: 3, oldestAt: T0 });

        expect(await s.webhooks.claimDue(T0 - 1, 10, lease('node-a', 30_000))).toEqual([]);
        const first = await s.webhooks.claimDue(T0 + 10, 2, lease('node-a', 30_000));
        expect(first.map((e) => e.event.recipient)).toEqual(['r0@example.org', 'r1@example.org']);
        expect(first.every((e) => e.webhookId === hook.id && e.url === 'https://hooks.test/a' && e.secret === 'secret')).toBe(true);
        const rest = await s.webhooks.claimDue(T0 + 10, 10, lease('node-b', 30_000));
        expect(rest.map((e) => e.event.recipient)).toEqual(['r2@example.org']);
        // All leased: nothing for anyone until the leases run out.
        expect(await s.webhooks.claimDue(T0 + 30_009, 10, lease('node-b', 30_000))).toEqual([]);

        await s.webhooks.delivered(first[0]!.id);
        await s.webhooks.failed(first[1]!.id, 'HTTP 500', T0 + 100_000);
        expect(await s.webhooks.backlog()).toEqual({ count: 2, oldestAt: T0 + 1 });

        // r2's lease ran out (its node died); r1 waits for its next attempt.
        const again = await s.webhooks.claimDue(T0 + 30_010, 10, lease('node-a', 30_000));
        expect(again.map((e) => [e.event.recipient, e.attempts])).toEqual([['r2@example.org', 0]]);
        await s.webhooks.delivered(again[0]!.id);
        const retried = await s.webhooks.claimDue(T0 + 100_000, 10, lease('node-a', 30_000));
        expect(retried.map((e) => [e.event.recipient, e.attempts])).toEqual([['r1@example.org', 1]]);

        expect(await s.webhooks.remove(hook.id)).toBe(true);
        expect(await s.webhooks.backlog()).toEqual({ count: 0, oldestAt: null });
      });
    });

    // ---- Nodes ---------------------------------------------------------------------------------

    describe('nodes', () => {
      const host = hostname();

      it('register, heartbeat, list with leased counts, unregister', async () => {
        expect(await s.nodes.list(T0)).toEqual([]);
        await s.nodes.register({ name: 'node-b', host, pid: process.pid, at: T0 });
        await s.nodes.register({ name: 'node-a', host: 'other-host', pid: 4242, at: T0 + 1 });
        await s.nodes.heartbeat('node-b', T0 + 5000);
        const m = await enqueued({ recipients: ['a@one.test', 'b@one.test', 'c@two.test'] });
        await claimJob(m.queueId, T0, 'node-b');

        expect(await s.nodes.list(T0 + 1000)).toEqual([
          { name: 'node-a', host: 'other-host', pid: 4242, startedAt: T0 + 1, heartbeatAt: T0 + 1, leased: 0 },
          { name: 'node-b', host, pid: process.pid, startedAt: T0, heartbeatAt: T0 + 5000, leased: 3 },
        ]);
        // Leases that ran out are not held.
        expect((await s.nodes.list(T0 + 60_000)).map((n) => n.leased)).toEqual([0, 0]);

        await s.nodes.unregister('node-a');
        await s.nodes.unregister('node-b');
        expect(await s.nodes.list(T0)).toEqual([]);
      });

      it('a name held by a live process is refused until it unregisters', async () => {
        await s.nodes.register({ name: 'mx1', host, pid: process.pid, at: T0 });
        const second = s.nodes.register({ name: 'mx1', host, pid: process.ppid, at: T0 + 1000 });
        await expect(second).rejects.toBeInstanceOf(NodeNameInUseError);
        await expect(second).rejects.toThrow(/node name mx1 is in use/);
        expect((await s.nodes.list(T0)).map((n) => [n.name, n.pid])).toEqual([['mx1', process.pid]]);

        await s.nodes.unregister('mx1');
        await s.nodes.register({ name: 'mx1', host, pid: process.ppid, at: T0 + 2000 });
        expect((await s.nodes.list(T0)).map((n) => [n.name, n.pid, n.startedAt])).toEqual([['mx1', process.ppid, T0 + 2000]]);
        await s.nodes.unregister('mx1');
      });
    });

    it('checkWritable resolves on a writable database', async () => {
      await expect(s.checkWritable()).resolves.toBeUndefined();
    });
  });
}
