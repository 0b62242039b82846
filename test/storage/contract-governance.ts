/**
 * The storage contract for what governs sending: credential policies (sender identities,
 * Reply-To domains, sandbox allowlists), message tags carried onto events, stats by tag, and
 * reading a window of events in pages. Run against each backend by contract.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { text } from 'node:stream/consumers';
import { exportEvents } from '../../src/exports/events.js';
import { OPEN_POLICY, type EventRecord, type Storage } from '../../src/queue/storage.js';
import { newMessage, T0, storagePerTest, type OpenedStorage } from './contract.js';

const collect = async (pages: AsyncIterable<EventRecord[]>) => {
  const sizes: number[] = [];
  const events: EventRecord[] = [];
  for await (const page of pages) {
    sizes.push(page.length);
    events.push(...page);
  }
  return { sizes, events };
};

export function governanceContract(name: string, open: () => Promise<OpenedStorage>): void {
  describe(`storage contract, governance: ${name}`, () => {
    let s: Storage;
    storagePerTest(open, (storage) => (s = storage));

    describe('credential policies', () => {
      it('are open until set, and a change keeps the fields it does not name', async () => {
        await s.credentials.add({ name: 'app', username: 'app', passwordHash: 'x', domains: ['acme.test'] });
        await s.credentials.add({ name: 'other', username: 'other', passwordHash: 'x', domains: ['acme.test'] });
        expect(await s.credentialPolicies.get('app')).toEqual(OPEN_POLICY);
        expect(await s.credentialPolicies.list()).toEqual(new Map());

        await s.credentialPolicies.set('app', { senders: ['no-reply@acme.test', 'billing@acme.test'], sandbox: true });
        await s.credentialPolicies.set('app', { allowedRecipients: ['dev@example.org', '@staging.test'] });
        await s.credentialPolicies.set('other', { replyToDomains: ['acme.test'] });
        expect(await s.credentialPolicies.get('app')).toEqual({
          senders: ['no-reply@acme.test', 'billing@acme.test'],
          replyToDomains: [],
          sandbox: true,
          allowedRecipients: ['dev@example.org', '@staging.test'],
        });
        await s.credentialPolicies.set('app', { senders: [], sandbox: false });
        expect(await s.credentialPolicies.get('app')).toEqual({ ...OPEN_POLICY, allowedRecipients: ['dev@example.org', '@staging.test'] });
        expect([...(await s.credentialPolicies.list()).entries()]).toEqual([
          ['app', { ...OPEN_POLICY, allowedRecipients: ['dev@example.org', '@staging.test'] }],
          ['other', { ...OPEN_POLICY, replyToDomains: ['acme.test'] }],
        ]);
      });
    });

    describe('tags', () => {
      it('are stored with the message and carried on each of its events, attempts and webhooks included', async () => {
        await s.webhooks.add('http://127.0.0.1:9/hook', 'secret', ['delivered']);
        const tagged = newMessage({ recipients: ['a@one.test', 'b@two.test'], tags: ['welcome', 'eu'] });
        const plain = newMessage({ recipients: ['c@one.test'] });
        expect(await s.queue.enqueue(tagged)).toEqual({ status: 'queued' });
        expect(await s.queue.enqueue(plain)).toEqual({ status: 'queued' });
        await s.events.record({
          queueId: 'QNOMESSAGE',
          messageId: '',
          credential: 'app',
          recipient: 'gone@one.test',
          status: 'suppressed',
          smtpCode: 550,
          response: '550 suppressed',
          category: 'suppressed',
          at: T0,
        });

        const jobs = await s.queue.claimDue(T0, 10, { owner: 'node-a', ms: 60_000 });
        for (const job of jobs) {
          await s.queue.recordAttempt({
            job,
            outcomes: job.recipients.map((r) => ({
              recipientId: r.id,
              status: r.address === 'b@two.test' ? ('bounced' as const) : ('delivered' as const),
              smtpCode: r.address === 'b@two.test' ? 550 : 250,
              response: 'reply',
            })),
            suppressions: [],
          });
        }
        const events = await s.events.query({ limit: 100 });
        const tagsOf = (recipient: string, status: string) => events.find((e) => e.recipient === recipient && e.status === status)?.tags;
        expect(tagsOf('a@one.test', 'queued')).toEqual(['welcome', 'eu']);
        expect(tagsOf('a@one.test', 'delivered')).toEqual(['welcome', 'eu']);
        expect(tagsOf('b@two.test', 'bounced')).toEqual(['welcome', 'eu']);
        expect(tagsOf('c@one.test', 'delivered')).toEqual([]);
        expect(tagsOf('gone@one.test', 'suppressed')).toEqual([]);

        const outbox = await s.webhooks.claimDue(Date.now() + 1000, 10, { owner: 'node-a', ms: 60_000 });
        expect(outbox.map((o) => [o.event.recipient, o.event.tags]).sort()).toEqual([
          ['a@one.test', ['welcome', 'eu']],
          ['c@one.test', []],
        ]);

        expect((await s.events.query({ tag: 'eu', limit: 100 })).map((e) => `${e.recipient} ${e.status}`).sort()).toEqual([
          'a@one.test delivered',
          'a@one.test queued',
          'b@two.test bounced',
          'b@two.test queued',
        ]);
        expect(await s.events.query({ tag: 'e', limit: 100 })).toEqual([]);
      });

      it('break down stats: buckets and failures for one tag, counts per tag', async () => {
        await s.queue.enqueue(newMessage({ recipients: ['a@one.test', 'b@two.test'], tags: ['welcome', 'eu'] }));
        await s.queue.enqueue(newMessage({ recipients: ['c@one.test'], tags: ['welcome'] }));
        await s.queue.enqueue(newMessage({ recipients: ['d@one.test'], tags: ['receipt'], credential: 'other' }));
        await s.queue.enqueue(newMessage({ recipients: ['e@one.test'] }));
        const jobs = await s.queue.claimDue(T0, 10, { owner: 'node-a', ms: 60_000 });
        const b = jobs.find((j) => j.domain === 'two.test')!;
        await s.queue.recordAttempt({
          job: b,
          outcomes: [{ recipientId: b.recipients[0]!.id, status: 'bounced', smtpCode: 550 }],
          suppressions: [],
        });
        // Attempts are recorded at the wall clock, before T0: the window covers both.
        const [from, to] = [0, T0 + 86_400_000];

        const count = (rows: { status: string; count: number }[]) => rows.reduce((n, r) => n + r.count, 0);
        expect(count(await s.events.buckets(from, to, to, undefined, 'welcome'))).toBe(4);
        expect(count(await s.events.buckets(from, to, to, 'other', 'welcome'))).toBe(0);
        expect(count(await s.events.buckets(from, to, to, 'other', 'receipt'))).toBe(1);
        expect((await s.events.lastFailures(from, to, undefined, 'eu')).map((e) => e.recipient)).toEqual(['b@two.test']);
        expect(await s.events.lastFailures(from, to, undefined, 'receipt')).toEqual([]);

        expect(await s.events.tagCounts(from, to)).toEqual([
          { tag: 'eu', status: 'bounced', count: 1 },
          { tag: 'eu', status: 'queued', count: 2 },
          { tag: 'receipt', status: 'queued', count: 1 },
          { tag: 'welcome', status: 'bounced', count: 1 },
          { tag: 'welcome', status: 'queued', count: 3 },
        ]);
        expect(await s.events.tagCounts(from, to, 'other')).toEqual([{ tag: 'receipt', status: 'queued', count: 1 }]);
        expect(await s.events.tagCounts(T0 + 1, T0 + 2)).toEqual([]);
      });
    });

    describe('event pages', () => {
      it('read a window oldest first, one page at a time, and nothing outside it', async () => {
        const at = [T0 - 5, T0, T0 + 1, T0 + 2, T0 + 3, T0 + 4, T0 + 5, T0 + 6, T0 + 100, T0 + 7];
        for (const [i, time] of at.entries()) {
          await s.events.record({
            queueId: `Q${i}`,
            messageId: `<m${i}@acme.test>`,
            credential: i % 3 === 0 ? 'other' : 'app',
            recipient: `r${i}@example.org`,
            status: 'delivered',
            smtpCode: 250,
            response: '250 ok',
            category: null,
            at: time,
          });
        }
        const window = await collect(s.events.pages({ from: T0, to: T0 + 100 }, 3));
        expect(window.sizes).toEqual([3, 3, 2]);
        expect(window.events.map((e) => e.recipient)).toEqual(
          ['r1', 'r2', 'r3', 'r4', 'r5', 'r6', 'r7', 'r9'].map((r) => `${r}@example.org`),
        );
        expect(window.events.map((e) => e.id)).toEqual([...window.events.map((e) => e.id)].sort((a, b) => a - b));

        const app = await collect(s.events.pages({ from: T0, to: T0 + 100, credential: 'app' }, 2));
        expect(app.events.map((e) => e.recipient)).toEqual(['r1', 'r2', 'r4', 'r5', 'r7'].map((r) => `${r}@example.org`));
        // A last page exactly full is followed by nothing.
        expect((await collect(s.events.pages({ from: T0, to: T0 + 3 }, 3))).sizes).toEqual([3]);
        expect((await collect(s.events.pages({ from: T0 + 200, to: T0 + 300 }, 3))).sizes).toEqual([]);

        expect((await s.events.query({ since: T0 + 5, until: T0 + 7, limit: 10 })).map((e) => e.at)).toEqual([T0 + 5, T0 + 6]);
      });

      it('stream as an export, CSV or JSON Lines, with the tags', async () => {
        const m = newMessage({ recipients: ['a@one.test'], tags: ['welcome', 'eu'] });
        await s.queue.enqueue(m);
        const record = (i: number) =>
          s.events.record({
            queueId: m.queueId,
            messageId: m.messageId,
            credential: 'app',
            recipient: `r${i}@example.org`,
            status: i % 2 ? 'delivered' : 'bounced',
            smtpCode: i % 2 ? 250 : 550,
            response: i % 2 ? '250 ok' : '550 5.1.1 "no such user", sorry',
            category: null,
            at: T0 + 1 + i,
          });
        // The first ones in order (their ids are checked), then more than a page's worth at once.
        for (let i = 0; i < 3; i++) await record(i);
        for (let i = 3; i < 1500; i += 100) await Promise.all(Array.from({ length: Math.min(100, 1500 - i) }, (_, j) => record(i + j)));
        const lines = (await text(exportEvents(s.events, { from: T0 + 1, to: T0 + 10_000 }, 'jsonl'))).trimEnd().split('\n');
        expect(lines).toHaveLength(1500);
        expect(JSON.parse(lines[0]!)).toEqual({
          id: expect.any(Number),
          at: new Date(T0 + 1).toISOString(),
          queue_id: m.queueId,
          message_id: m.messageId,
          credential: 'app',
          recipient: 'r0@example.org',
          domain: 'example.org',
          status: 'bounced',
          smtp_code: 550,
          response: '550 5.1.1 "no such user", sorry',
          category: null,
          tags: ['welcome', 'eu'],
        });
        const csv = (await text(exportEvents(s.events, { from: T0 + 1, to: T0 + 3 }, 'csv'))).split('\r\n');
        expect(csv[0]).toBe('id,at,queue_id,message_id,credential,recipient,domain,status,smtp_code,response,category,tags');
        expect(csv[1]).toMatch(/,r0@example\.org,example\.org,bounced,550,"550 5\.1\.1 ""no such user"", sorry",,"welcome,eu"$/);
        expect(csv[2]).toMatch(/,r1@example\.org,example\.org,delivered,250,250 ok,,"welcome,eu"$/);
        expect(csv.slice(3)).toEqual(['']);
      });
    });
  });
}
