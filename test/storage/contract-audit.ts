/**
 * The storage contract for governance: the audit log, credential rotation and the secrets at
 * rest, run against each backend by contract.test.ts like contract.ts.
 */
import { createHash } from 'node:crypto';
import { beforeEach, describe, expect, it } from 'vitest';
import type { NewAuditEntry, Storage } from '../../src/queue/storage.js';
import { T0, storagePerTest, type OpenedStorage } from './contract.js';

const entry = (n: number, overrides: Partial<NewAuditEntry> = {}): NewAuditEntry => ({
  at: T0 + n * 1000,
  actor: 'cli:alice',
  action: 'domain.add',
  target: `d${n}.test`,
  change: `{"n":${n}}`,
  ...overrides,
});

/** A stand-in for src/audit's hash: the backend must store whatever it returns. */
const hash = (prevHash: string, row: NewAuditEntry & { seq: number }) =>
  createHash('sha256').update(`${prevHash}|${row.seq}|${row.at}|${row.actor}|${row.action}|${row.target}|${row.change}`).digest('hex');

export function governanceContract(name: string, open: () => Promise<OpenedStorage>): void {
  describe(`storage contract (audit, rotation, secrets): ${name}`, () => {
    let s: Storage;
    storagePerTest(open, (storage) => (s = storage));

    describe('audit log', () => {
      it('appends rows in sequence, each chained to the one before', async () => {
        const first = await s.audit.append(entry(1), hash);
        expect(first).toEqual({ ...entry(1), seq: 1, prevHash: '', hash: hash('', { ...entry(1), seq: 1 }) });
        const second = await s.audit.append(entry(2), hash);
        expect(second).toMatchObject({ seq: 2, prevHash: first.hash, hash: hash(first.hash, { ...entry(2), seq: 2 }) });
        expect(await s.audit.list({ limit: 10 })).toEqual([first, second]);
      });

      it('appends made at once still form one chain', async () => {
        await Promise.all(Array.from({ length: 25 }, (_, i) => s.audit.append(entry(i), hash)));
        const rows = await s.audit.list({ limit: 100 });
        expect(rows.map((r) => r.seq)).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
        rows.forEach((row, i) => expect(row.prevHash).toBe(i === 0 ? '' : rows[i - 1]!.hash));
        expect(new Set(rows.map((r) => r.target)).size).toBe(25);
      });

      it('lists by cursor, time and actor', async () => {
        for (let i = 1; i <= 5; i++) await s.audit.append(entry(i, { actor: i % 2 ? 'cli:alice' : 'admin-token' }), hash);
        expect((await s.audit.list({ afterSeq: 2, limit: 2 })).map((r) => r.seq)).toEqual([3, 4]);
        expect((await s.audit.list({ since: T0 + 4000, limit: 10 })).map((r) => r.seq)).toEqual([4, 5]);
        expect((await s.audit.list({ actor: 'admin-token', limit: 10 })).map((r) => r.seq)).toEqual([2, 4]);
        expect(await s.audit.list({ actor: 'nobody', limit: 10 })).toEqual([]);
      });

      it('keeps the change text byte for byte', async () => {
        const change = '{"b":1,"a":"ünïcödé \\" \\\\"}';
        await s.audit.append(entry(1, { change }), hash);
        expect((await s.audit.list({ limit: 1 }))[0]!.change).toBe(change);
      });
    });

    describe('credential rotation', () => {
      beforeEach(async () => {
        await s.credentials.add({ name: 'app', username: 'app', passwordHash: 'old-hash', domains: ['acme.test'] });
        await s.credentials.addApiKey('app', 'old-key');
      });

      it('has no rotation until rotated', async () => {
        expect((await s.credentials.get('app'))!.rotation).toBeUndefined();
      });

      it('keeps the old password and keys until the grace ends', async () => {
        const until = Date.now() + 60_000;
        expect(await s.credentials.rotate('app', { passwordHash: 'new-hash', apiKeyHash: 'new-key', until })).toBe(true);
        const rotated = await s.credentials.byUsername('app');
        expect(rotated).toMatchObject({
          passwordHash: 'new-hash',
          rotation: { until, oldPasswordHash: 'old-hash', oldApiKeyHashes: ['old-key'], oldLogins: 0, lastOldLoginAt: null },
        });
        expect((await s.credentials.byApiKey('old-key'))?.name).toBe('app');
        expect((await s.credentials.byApiKey('new-key'))?.name).toBe('app');

        await s.credentials.recordOldSecretLogin('app', T0);
        await s.credentials.recordOldSecretLogin('app', T0 + 5);
        expect((await s.credentials.get('app'))!.rotation).toMatchObject({ oldLogins: 2, lastOldLoginAt: T0 + 5 });
      });

      it('refuses retired keys once the grace has ended', async () => {
        await s.credentials.rotate('app', { passwordHash: 'new-hash', apiKeyHash: 'new-key', until: Date.now() - 1 });
        expect(await s.credentials.byApiKey('old-key')).toBeUndefined();
        expect((await s.credentials.byApiKey('new-key'))?.name).toBe('app');
      });

      it('without a new key keeps the current keys; a second rotation replaces the first', async () => {
        const until = Date.now() + 60_000;
        await s.credentials.rotate('app', { passwordHash: 'second', apiKeyHash: 'second-key', until });
        await s.credentials.recordOldSecretLogin('app', T0);
        await s.credentials.rotate('app', { passwordHash: 'third', until: until + 1 });
        const third = await s.credentials.get('app');
        expect(third).toMatchObject({ passwordHash: 'third', rotation: { until: until + 1, oldPasswordHash: 'second', oldLogins: 0 } });
        expect(third!.rotation!.oldApiKeyHashes).toEqual([]);
        expect(await s.credentials.byApiKey('old-key')).toBeUndefined();
        expect((await s.credentials.byApiKey('second-key'))?.name).toBe('app');
      });

      it('does not rotate a revoked or unknown credential', async () => {
        await s.credentials.revoke('app');
        expect(await s.credentials.rotate('app', { passwordHash: 'x', until: Date.now() })).toBe(false);
        expect(await s.credentials.rotate('nobody', { passwordHash: 'x', until: Date.now() })).toBe(false);
        expect((await s.credentials.get('app'))!.passwordHash).toBe('old-hash');
      });
    });

    describe('secrets at rest', () => {
      it('lists every DKIM key (domain rows and the keys table) and webhook secret as stored, and rewrites those still unchanged', async () => {
        const domain = { selector: 's', algorithm: 'rsa', publicKey: 'p', verificationToken: 't' } as const;
        await s.domains.add({ ...domain, name: 'a.test', privateKeyPem: 'pem-a' });
        await s.domains.add({ ...domain, name: 'b.test', privateKeyPem: 'pem-b' });
        const hook = await s.webhooks.add('https://hooks.test/', 'hook-secret', ['bounced']);
        expect(await s.secrets.list()).toEqual([
          { kind: 'dkim', id: 'a.test', value: 'pem-a' },
          { kind: 'dkim', id: 'a.test/s', value: 'pem-a' },
          { kind: 'dkim', id: 'b.test', value: 'pem-b' },
          { kind: 'dkim', id: 'b.test/s', value: 'pem-b' },
          { kind: 'webhook', id: String(hook.id), value: 'hook-secret' },
        ]);
        const replaced = await s.secrets.replace([
          { kind: 'dkim', id: 'a.test', from: 'pem-a', value: 'sealed-a' },
          { kind: 'dkim', id: 'a.test/s', from: 'pem-a', value: 'sealed-a' },
          { kind: 'dkim', id: 'b.test', from: 'changed meanwhile', value: 'sealed-b' },
          { kind: 'webhook', id: String(hook.id), from: 'hook-secret', value: 'sealed-hook' },
        ]);
        expect(replaced).toBe(3);
        expect((await s.domains.get('a.test'))!.privateKeyPem).toBe('sealed-a');
        expect((await s.dkimKeys.list('a.test'))[0]!.privateKeyPem).toBe('sealed-a');
        expect((await s.domains.get('b.test'))!.privateKeyPem).toBe('pem-b');
        expect((await s.webhooks.list())[0]!.secret).toBe('sealed-hook');
      });
    });
  });
}
