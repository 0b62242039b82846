/**
 * The storage contract for operator tokens and template removal, run against each backend by
 * contract.test.ts like contract.ts.
 */
import { describe, expect, it } from 'vitest';
import type { Storage } from '../../src/queue/storage.js';
import { T0, storagePerTest, type OpenedStorage } from './contract.js';

export function operatorContract(name: string, open: () => Promise<OpenedStorage>): void {
  describe(`storage contract, operators: ${name}`, () => {
    let s: Storage;
    storagePerTest(open, (storage) => (s = storage));

    it('adds an operator once, finds it by name and by token id, and lists every operator by name', async () => {
      expect(await s.operators.add({ name: 'zoe', role: 'viewer', tokenId: 'id-z', tokenHash: 'h-z' }, T0)).toBe(true);
      expect(await s.operators.add({ name: 'ann', role: 'sender-admin', tokenId: 'id-a', tokenHash: 'h-a' }, T0 + 1)).toBe(true);
      expect(await s.operators.add({ name: 'ann', role: 'admin', tokenId: 'id-x', tokenHash: 'h-x' }, T0 + 2)).toBe(false);
      const ann = {
        name: 'ann',
        role: 'sender-admin',
        tokenId: 'id-a',
        tokenHash: 'h-a',
        createdAt: T0 + 1,
        tokenIssuedAt: T0 + 1,
        revokedAt: null,
      };
      expect(await s.operators.get('ann')).toEqual(ann);
      expect(await s.operators.byTokenId('id-a')).toEqual(ann);
      expect(await s.operators.byTokenId('id-x')).toBeUndefined();
      expect(await s.operators.get('nobody')).toBeUndefined();
      expect((await s.operators.list()).map((o) => [o.name, o.role])).toEqual([
        ['ann', 'sender-admin'],
        ['zoe', 'viewer'],
      ]);
    });

    it('a new token replaces the old one; a revoked operator has no token and keeps its name taken', async () => {
      await s.operators.add({ name: 'ann', role: 'template-editor', tokenId: 'old', tokenHash: 'h-old' }, T0);
      expect(await s.operators.replaceToken('ann', { tokenId: 'new', tokenHash: 'h-new' }, T0 + 5)).toBe(true);
      expect(await s.operators.byTokenId('old')).toBeUndefined();
      expect(await s.operators.byTokenId('new')).toMatchObject({ name: 'ann', tokenHash: 'h-new', createdAt: T0, tokenIssuedAt: T0 + 5 });
      expect(await s.operators.replaceToken('nobody', { tokenId: 'x', tokenHash: 'x' }, T0)).toBe(false);

      expect(await s.operators.revoke('ann', T0 + 9)).toBe(true);
      expect(await s.operators.revoke('ann', T0 + 10)).toBe(false);
      expect(await s.operators.byTokenId('new')).toBeUndefined();
      expect(await s.operators.get('ann')).toMatchObject({ revokedAt: T0 + 9 });
      expect(await s.operators.replaceToken('ann', { tokenId: 'again', tokenHash: 'h' }, T0 + 11)).toBe(false);
      expect(await s.operators.add({ name: 'ann', role: 'viewer', tokenId: 'other', tokenHash: 'h' }, T0 + 12)).toBe(false);
    });

    it('removes every version of a template', async () => {
      await s.templates.add({ name: 'welcome', subject: 'Hi', text: 'one', html: null });
      await s.templates.add({ name: 'welcome', subject: 'Hi', text: 'two', html: null });
      await s.templates.add({ name: 'other', subject: 'Yo', text: 'x', html: null });
      expect(await s.templates.remove('welcome')).toBe(true);
      expect(await s.templates.remove('welcome')).toBe(false);
      expect(await s.templates.get('welcome', 1)).toBeUndefined();
      expect((await s.templates.list()).map((t) => t.name)).toEqual(['other']);
    });
  });
}
