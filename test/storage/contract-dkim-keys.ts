/**
 * The DKIM key store's contract (DkimKeyStore in src/queue/storage.ts), run against each backend
 * by contract.test.ts. Key material is opaque to storage, so short stand-ins are used.
 */
import { describe, expect, it } from 'vitest';
import type { NewDkimKey, Storage } from '../../src/queue/storage.js';
import type { OpenedStorage } from './contract.js';
import { storagePerTest, T0 } from './contract.js';

const DAY = 86_400_000;

const domain = (name: string, selector = 'relay203001') => ({
  name,
  selector,
  algorithm: 'rsa' as const,
  privateKeyPem: `private ${name} ${selector}`,
  publicKey: `public ${name} ${selector}`,
  verificationToken: 'token',
});

const key = (overrides: Partial<NewDkimKey> & Pick<NewDkimKey, 'selector'>): NewDkimKey => ({
  domain: 'acme.test',
  algorithm: 'rsa',
  privateKeyPem: `private ${overrides.selector}`,
  publicKey: `public ${overrides.selector}`,
  state: 'pending',
  autoActivate: false,
  ...overrides,
});

export function dkimKeysContract(name: string, open: () => Promise<OpenedStorage>): void {
  describe(`storage contract, DKIM keys: ${name}`, () => {
    let s: Storage;
    storagePerTest(open, (storage) => (s = storage));

    it("a new domain's key is its first, active key", async () => {
      await s.domains.add(domain('Acme.Test'));
      const [first] = await s.dkimKeys.list('acme.test');
      expect(first).toMatchObject({
        domain: 'acme.test',
        selector: 'relay203001',
        algorithm: 'rsa',
        privateKeyPem: 'private Acme.Test relay203001',
        publicKey: 'public Acme.Test relay203001',
        state: 'active',
        autoActivate: false,
        publishedAt: null,
        retireAt: null,
      });
      expect(first!.activatedAt).toBe(first!.createdAt);
      expect(await s.dkimKeys.active('ACME.test')).toEqual([first]);
    });

    it('adds pending keys beside the active one, in selector order, all or none', async () => {
      await s.domains.add(domain('acme.test'));
      await s.dkimKeys.add([key({ selector: 'relay20300201-rsa' }), key({ selector: 'relay20300201-ed25519', algorithm: 'ed25519' })], T0);
      const keys = await s.dkimKeys.list('acme.test');
      expect(keys.map((k) => [k.selector, k.state, k.createdAt])).toEqual([
        ['relay203001', 'active', keys[0]!.createdAt],
        ['relay20300201-ed25519', 'pending', T0],
        ['relay20300201-rsa', 'pending', T0],
      ]);
      expect(keys[1]).toMatchObject({ algorithm: 'ed25519', activatedAt: null, privateKeyPem: 'private relay20300201-ed25519' });
      // A taken selector refuses the whole batch.
      await expect(s.dkimKeys.add([key({ selector: 'relay20300301' }), key({ selector: 'relay203001' })], T0)).rejects.toThrow();
      expect(await s.dkimKeys.list('acme.test')).toHaveLength(3);
      // Keys belong to a known domain.
      await expect(s.dkimKeys.add([key({ domain: 'other.test', selector: 's' })], T0)).rejects.toThrow();
    });

    it('lists the pending keys waiting for auto activation, of every domain', async () => {
      await s.domains.add(domain('acme.test'));
      await s.domains.add(domain('beta.test'));
      await s.dkimKeys.add([key({ selector: 'manual' })], T0);
      await s.dkimKeys.add([key({ domain: 'beta.test', selector: 'auto', autoActivate: true })], T0);
      expect((await s.dkimKeys.pendingAuto()).map((k) => [k.domain, k.selector, k.autoActivate])).toEqual([['beta.test', 'auto', true]]);
    });

    it('remembers when a record was found published, and forgets it again', async () => {
      await s.domains.add(domain('acme.test'));
      await s.dkimKeys.add([key({ selector: 'next' })], T0);
      await s.dkimKeys.setPublished('acme.test', 'next', T0 + 5);
      expect((await s.dkimKeys.list('acme.test')).find((k) => k.selector === 'next')!.publishedAt).toBe(T0 + 5);
      await s.dkimKeys.setPublished('acme.test', 'next', null);
      expect((await s.dkimKeys.list('acme.test')).find((k) => k.selector === 'next')!.publishedAt).toBeNull();
    });

    it('activation makes the pending keys sign, retires the active ones and shows the new key on the domain', async () => {
      await s.domains.add(domain('acme.test'));
      expect(await s.dkimKeys.activatePending('acme.test', T0, T0 + 7 * DAY)).toBe(false);
      await s.dkimKeys.add(
        [
          key({ selector: 'relay20300201-ed25519', algorithm: 'ed25519' }),
          key({ selector: 'relay20300201-rsa', privateKeyPem: 'private next rsa', publicKey: 'public next rsa' }),
        ],
        T0,
      );
      expect(await s.dkimKeys.activatePending('acme.test', T0 + 1, T0 + 7 * DAY)).toBe(true);
      const keys = await s.dkimKeys.list('acme.test');
      expect(keys.map((k) => [k.selector, k.state, k.activatedAt === null ? null : k.activatedAt >= T0, k.retireAt])).toEqual([
        ['relay203001', 'retiring', false, T0 + 7 * DAY],
        ['relay20300201-ed25519', 'active', true, null],
        ['relay20300201-rsa', 'active', true, null],
      ]);
      // RSA first: the key receivers that know only RSA need.
      expect((await s.dkimKeys.active('acme.test')).map((k) => k.selector)).toEqual(['relay20300201-rsa', 'relay20300201-ed25519']);
      expect(await s.domains.get('acme.test')).toMatchObject({
        selector: 'relay20300201-rsa',
        algorithm: 'rsa',
        privateKeyPem: 'private next rsa',
        publicKey: 'public next rsa',
      });
      expect(await s.dkimKeys.activatePending('acme.test', T0 + 2, T0 + 8 * DAY)).toBe(false);
    });

    it('retires keys whose time has come, dropping their private key, and forgets them once their record is gone', async () => {
      await s.domains.add(domain('acme.test'));
      await s.domains.add(domain('beta.test'));
      await s.dkimKeys.add([key({ selector: 'next' })], T0);
      await s.dkimKeys.add([key({ domain: 'beta.test', selector: 'next' })], T0);
      await s.dkimKeys.activatePending('acme.test', T0, T0 + DAY);
      await s.dkimKeys.activatePending('beta.test', T0, T0 + 2 * DAY);

      expect(await s.dkimKeys.retireDue(T0 + DAY - 1)).toEqual([]);
      const retired = await s.dkimKeys.retireDue(T0 + DAY);
      expect(retired.map((k) => [k.domain, k.selector, k.state, k.privateKeyPem, k.publicKey])).toEqual([
        ['acme.test', 'relay203001', 'retired', null, 'public acme.test relay203001'],
      ]);
      expect(await s.dkimKeys.retireDue(T0 + DAY)).toEqual([]);
      expect((await s.dkimKeys.list('beta.test')).map((k) => k.state)).toEqual(['active', 'retiring']);

      // Only a retired key can be forgotten.
      expect(await s.dkimKeys.forget('acme.test', 'next')).toBe(false);
      expect(await s.dkimKeys.forget('acme.test', 'relay203001')).toBe(true);
      expect((await s.dkimKeys.list('acme.test')).map((k) => k.selector)).toEqual(['next']);
    });

    it('removing a domain removes its keys', async () => {
      await s.domains.add(domain('acme.test'));
      await s.dkimKeys.add([key({ selector: 'next' })], T0);
      expect(await s.domains.remove('acme.test')).toBe(true);
      expect(await s.dkimKeys.list('acme.test')).toEqual([]);
      await s.domains.add(domain('acme.test', 'again'));
      expect((await s.dkimKeys.list('acme.test')).map((k) => k.selector)).toEqual(['again']);
    });
  });
}
