/** Selectors of rotated keys: dated, unique within the domain, and sorting in the order the keys were made. */
import { describe, expect, it } from 'vitest';
import { keySelectors, KeyLifecycleError, rotationStem } from '../src/domains/dkim-keys.js';

const NOV_27 = Date.UTC(2026, 10, 27, 23, 59);

describe('rotation selectors', () => {
  it('are relay + the UTC date, then a letter for each further rotation that day', () => {
    expect(rotationStem(['relay202611'], NOV_27)).toBe('relay20261127');
    expect(rotationStem(['relay202611', 'relay20261127'], NOV_27)).toBe('relay20261127b');
    expect(rotationStem(['relay20261127-rsa', 'relay20261127-ed25519', 'relay20261127b'], NOV_27)).toBe('relay20261127c');
    const all = ['', ...'bcdefghijklmnopqrstuvwxyz'].map((s) => `relay20261127${s}`);
    expect(() => rotationStem(all, NOV_27)).toThrow(KeyLifecycleError);
  });

  it('sort in the order the keys were made, after the selector `domain add` gives', () => {
    const made = [
      'relay202611',
      rotationStem(['relay202611'], NOV_27),
      rotationStem(['relay202611', 'relay20261127'], NOV_27),
      rotationStem([], Date.UTC(2026, 11, 1)),
    ];
    expect([...made].sort()).toEqual(made);
  });

  it('with both algorithms, name one key of each kind under one stem', () => {
    expect(keySelectors('relay20261127', 'both')).toEqual([
      { selector: 'relay20261127-rsa', algorithm: 'rsa' },
      { selector: 'relay20261127-ed25519', algorithm: 'ed25519' },
    ]);
    expect(keySelectors('relay20261127', 'ed25519')).toEqual([{ selector: 'relay20261127', algorithm: 'ed25519' }]);
  });
});
