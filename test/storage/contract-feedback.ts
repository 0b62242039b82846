/**
 * The feedback store's contract (FeedbackStore in src/queue/storage.ts), run against each backend
 * by contract.test.ts: the shared token key, finding a report's message and recipient, async
 * events with their webhook outbox rows and suppressions, the credential's unsubscribe setting.
 */
import { describe, expect, it } from 'vitest';
import type { Storage } from '../../src/queue/storage.js';
import { newMessage, T0, storagePerTest, type OpenedStorage } from './contract.js';

export function feedbackContract(name: string, open: () => Promise<OpenedStorage>): void {
  describe(`feedback store contract: ${name}`, () => {
    let s: Storage;
    storagePerTest(open, (storage) => (s = storage));

    it('makes the token key once and hands out the same one after', async () => {
      const [a, b] = await Promise.all([s.feedback.secret(), s.feedback.secret()]);
      expect(a.length).toBe(32);
      expect(b.equals(a)).toBe(true);
      expect((await s.feedback.secret()).equals(a)).toBe(true);
    });

    it('finds a recipient by its row id, and messages by queue id or Message-ID', async () => {
      const message = newMessage({ recipients: ['one@example.org', 'two@example.net'] });
      await s.queue.enqueue(message);
      const jobs = await s.queue.claimDue(T0, 10, { owner: 'n1', ms: 60_000 });
      const two = jobs.flatMap((j) => j.recipients).find((r) => r.address === 'two@example.net')!;
      expect(await s.feedback.recipient(message.queueId, two.id)).toEqual({
        queueId: message.queueId,
        messageId: message.messageId,
        credential: 'app',
        recipient: 'two@example.net',
      });
      expect(await s.feedback.recipient('NOSUCHQUEUEID', two.id)).toBeUndefined();
      const expected = [
        { queueId: message.queueId, messageId: message.messageId, credential: 'app', recipients: ['one@example.org', 'two@example.net'] },
      ];
      expect(await s.feedback.messages({ messageId: message.messageId })).toEqual(expected);
      expect(await s.feedback.messages({ queueId: message.queueId })).toEqual(expected);
      expect(await s.feedback.messages({ messageId: '<unknown@acme.test>' })).toEqual([]);
    });

    it('records an async event with its webhook outbox row and its suppression in one go', async () => {
      await s.webhooks.add('http://127.0.0.1:9/hook', 'secret', ['complained']);
      const event = {
        queueId: 'Q1',
        messageId: '<m@acme.test>',
        credential: 'app',
        recipient: 'Someone@Example.org',
        status: 'complained' as const,
        smtpCode: null,
        response: 'feedback report: abuse',
        category: 'abuse',
        at: T0,
      };
      await s.feedback.record(event, { address: 'Someone@Example.org', credential: 'app', reason: 'complaint: abuse' });
      await s.feedback.record({ ...event, status: 'bounced', recipient: 'other@example.org' }, null);
      const events = await s.events.query({ limit: 10 });
      expect(events.map((e) => [e.recipient, e.status, e.phase])).toEqual([
        ['Someone@Example.org', 'complained', 'async'],
        ['other@example.org', 'bounced', 'async'],
      ]);
      expect(await s.suppressions.list()).toMatchObject([
        { address: 'someone@example.org', credential: 'app', reason: 'complaint: abuse' },
      ]);
      const outbox = await s.webhooks.claimDue(T0 + 1, 10, { owner: 'n1', ms: 60_000 });
      expect(outbox.map((o) => [o.event.recipient, o.event.status, o.event.phase])).toEqual([
        ['Someone@Example.org', 'complained', 'async'],
      ]);
    });

    it("keeps each credential's list-unsubscribe setting", async () => {
      expect(await s.feedback.listUnsubscribe('news')).toBe(false);
      await s.feedback.setListUnsubscribe('news', true);
      expect(await s.feedback.listUnsubscribe('news')).toBe(true);
      expect(await s.feedback.listUnsubscribe('app')).toBe(false);
      await s.feedback.setListUnsubscribe('news', false);
      expect(await s.feedback.listUnsubscribe('news')).toBe(false);
    });
  });
}
