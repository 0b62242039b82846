/**
 * The storage contract for outbound TLS: MTA-STS policies, TLS-RPT counts, and the TLS facts
 * events carry. Run against each backend by contract.test.ts.
 */
import { describe, expect, it } from 'vitest';
import type { StsPolicyRecord, Storage, TlsInfo, TlsResultCount } from '../../src/queue/storage.js';
import { newMessage, T0, storagePerTest, type OpenedStorage } from './contract.js';

const policy = (overrides: Partial<StsPolicyRecord> = {}): StsPolicyRecord => ({
  domain: 'example.org',
  id: '20300101',
  mode: 'enforce',
  mx: ['mx1.example.org', '*.mx.example.org'],
  maxAge: 86_400,
  fetchedAt: T0,
  expiresAt: T0 + 86_400_000,
  ...overrides,
});

const count = (overrides: Partial<TlsResultCount> = {}): TlsResultCount => ({
  day: '2030-01-15',
  policyDomain: 'example.org',
  policyType: 'sts',
  policyString: ['version: STSv1', 'mode: enforce', 'mx: mx1.example.org', 'max_age: 86400'],
  mxHost: 'mx1.example.org',
  resultType: 'success',
  count: 1,
  ...overrides,
});

const byKey = (counts: TlsResultCount[]) => [...counts].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));

export function tlsPolicyContract(name: string, open: () => Promise<OpenedStorage>): void {
  describe(`storage contract, outbound TLS: ${name}`, () => {
    let s: Storage;
    storagePerTest(open, (storage) => (s = storage));

    it('keeps one MTA-STS policy per domain, the latest saved', async () => {
      expect(await s.tlsPolicies.stsPolicy('example.org')).toBeUndefined();
      await s.tlsPolicies.saveStsPolicy(policy());
      expect(await s.tlsPolicies.stsPolicy('Example.ORG')).toEqual(policy());
      const next = policy({ id: '20300102', mode: 'testing', mx: ['mx2.example.org'], fetchedAt: T0 + 1, expiresAt: T0 + 2 });
      await s.tlsPolicies.saveStsPolicy(next);
      expect(await s.tlsPolicies.stsPolicy('example.org')).toEqual(next);
      expect(await s.tlsPolicies.stsPolicy('example.net')).toBeUndefined();
    });

    it('adds TLS result counts by key and hands each finished day out once', async () => {
      await s.tlsPolicies.countTlsResults([count(), count({ resultType: 'certificate-host-mismatch' })]);
      await s.tlsPolicies.countTlsResults([count({ count: 2 }), count({ day: '2030-01-16' })]);
      await s.tlsPolicies.countTlsResults([count({ policyType: 'tlsa', policyString: ['3 1 1 ab'], policyDomain: 'example.net' })]);

      const taken = await s.tlsPolicies.takeTlsResults('2030-01-16');
      expect(byKey(taken)).toEqual(
        byKey([
          count({ count: 3 }),
          count({ resultType: 'certificate-host-mismatch' }),
          count({ policyType: 'tlsa', policyString: ['3 1 1 ab'], policyDomain: 'example.net' }),
        ]),
      );
      expect(await s.tlsPolicies.takeTlsResults('2030-01-16')).toEqual([]);
      expect(await s.tlsPolicies.takeTlsResults('2030-01-17')).toEqual([count({ day: '2030-01-16' })]);
    });

    it('records the TLS facts of an attempt with its events, and in the webhook outbox', async () => {
      const tls: TlsInfo = { version: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384', verified: true, policy: 'sts' };
      await s.webhooks.add('https://hooks.test/x', 'secret', ['delivered']);
      const message = newMessage({ recipients: ['a@example.org', 'b@example.org'] });
      await s.queue.enqueue(message);
      const [job] = await s.queue.claimDue(T0, 10, { owner: 'n', ms: 60_000 });
      const [a, b] = job!.recipients;
      await s.queue.recordAttempt({
        job: job!,
        outcomes: [
          { recipientId: a!.id, status: 'delivered', smtpCode: 250, response: '250 ok', tls },
          { recipientId: b!.id, status: 'deferred', response: '4.7.5 certificate not verified', nextAttemptAt: T0 + 1000 },
        ],
        suppressions: [],
      });
      const events = await s.events.query({ queueId: message.queueId, limit: 10 });
      expect(events.map((e) => [e.status, e.tls])).toEqual([
        ['queued', undefined],
        ['queued', undefined],
        ['delivered', tls],
        ['deferred', undefined],
      ]);
      const [entry] = await s.webhooks.claimDue(Date.now() + 1000, 10, { owner: 'n', ms: 60_000 });
      expect(entry!.event.tls).toEqual(tls);
    });
  });
}
