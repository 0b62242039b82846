/**
 * A sender domain's DKIM key lifecycle: a rotation creates the next key under a new selector
 * (pending); once its record is found published it may become the signing key (active) and
 * the key it replaces keeps its record published for `signing.retire_after` (retiring), after
 * which its private key is removed (retired) until its record is found deleted.
 */
import type { Resolver } from '../delivery/resolver.js';
import type { DkimKeyRecord, DkimKeyStore, NewDkimKey } from '../queue/storage.js';
import { generateDkimKey, type DkimAlgorithm } from '../signing/keys.js';
import { dkimName, dkimValue } from './records.js';
import { verifyDkimKey, type Check } from './verify.js';

/** `both` signs with RSA-2048 and Ed25519 together: several large receivers still verify only RSA. */
export type KeyAlgorithmChoice = DkimAlgorithm | 'both';

/** A refusal an operator can act on (the CLI prints it as it is). */
export class KeyLifecycleError extends Error {}

/** The selector of each new key: with `both`, one per algorithm under the same stem. */
export function keySelectors(stem: string, choice: KeyAlgorithmChoice): { selector: string; algorithm: DkimAlgorithm }[] {
  if (choice !== 'both') return [{ selector: stem, algorithm: choice }];
  return [
    { selector: `${stem}-rsa`, algorithm: 'rsa' },
    { selector: `${stem}-ed25519`, algorithm: 'ed25519' },
  ];
}

/**
 * `relay` + the UTC date (relay20261127), then relay20261127b, ... for further rotations that
 * day: selectors sort in the order the keys were made, and none is used twice.
 */
export function rotationStem(taken: string[], now: number): string {
  const date = new Date(now).toISOString().slice(0, 10).replaceAll('-', '');
  const used = (stem: string) => taken.some((s) => s === stem || s.startsWith(`${stem}-`));
  for (const suffix of ['', ...'bcdefghijklmnopqrstuvwxyz']) {
    if (!used(`relay${date}${suffix}`)) return `relay${date}${suffix}`;
  }
  throw new KeyLifecycleError('26 DKIM keys were made today already: rotate again tomorrow');
}

export function generateKeys(
  domain: string,
  stem: string,
  choice: KeyAlgorithmChoice,
  state: NewDkimKey['state'],
  autoActivate = false,
): NewDkimKey[] {
  return keySelectors(stem, choice).map(({ selector, algorithm }) => ({
    domain,
    selector,
    algorithm,
    ...generateDkimKey(algorithm),
    state,
    autoActivate,
  }));
}

/** Creates the domain's next key(s), pending until published and activated. */
export async function rotateKey(
  store: DkimKeyStore,
  domain: string,
  choice: KeyAlgorithmChoice,
  options: { auto: boolean; now: number },
): Promise<DkimKeyRecord[]> {
  const existing = await store.list(domain);
  const pending = existing.filter((k) => k.state === 'pending');
  if (pending.length > 0) {
    throw new KeyLifecycleError(
      `${domain} already has a new key waiting (selector ${pending.map((k) => k.selector).join(', ')}): ` +
        `publish its record (\`relay domain keys ${domain}\`), then run \`relay domain activate-key ${domain}\``,
    );
  }
  const stem = rotationStem(
    existing.map((k) => k.selector),
    options.now,
  );
  await store.add(generateKeys(domain, stem, choice, 'pending', options.auto), options.now);
  return (await store.list(domain)).filter((k) => k.state === 'pending');
}

export interface KeyCheck {
  key: DkimKeyRecord;
  check: Check;
}

/**
 * Looks up the record of each of the domain's keys and remembers which are published; a
 * retired key whose record is gone is forgotten. A failed lookup changes nothing.
 */
export async function checkKeys(store: DkimKeyStore, resolver: Resolver, domain: string, now: number): Promise<KeyCheck[]> {
  const keys = await store.list(domain);
  return Promise.all(
    keys.map(async (key) => {
      const check = await verifyDkimKey({ ...key, name: domain }, resolver);
      if (check.status === 'error') return { key, check };
      const published = check.status === 'found';
      if (key.state === 'retired' && check.status === 'missing') await store.forget(domain, key.selector);
      else if (published !== (key.publishedAt !== null)) await store.setPublished(domain, key.selector, published ? now : null);
      return { key: { ...key, publishedAt: published ? (key.publishedAt ?? now) : null }, check };
    }),
  );
}

/**
 * Makes the pending key(s) sign, once each is found published; the keys they replace retire
 * after `retireAfter`. Refused, with what to publish, while a record is not found.
 */
export async function activateKeys(
  store: DkimKeyStore,
  resolver: Resolver,
  domain: string,
  options: { now: number; retireAfter: number },
): Promise<DkimKeyRecord[]> {
  const pending = (await checkKeys(store, resolver, domain, options.now)).filter((c) => c.key.state === 'pending');
  if (pending.length === 0) {
    throw new KeyLifecycleError(`${domain} has no new key to activate: create one with \`relay domain rotate-key ${domain}\``);
  }
  const unpublished = pending.filter((c) => c.check.status !== 'found');
  if (unpublished.length > 0) {
    throw new KeyLifecycleError(
      `the new DKIM key of ${domain} is not verified yet, so signing stays with the current key: ` +
        unpublished.map((c) => c.check.message).join('; '),
    );
  }
  return activate(store, domain, pending, options);
}

/** After a check: activates keys rotated with --auto once every pending key of the domain is published. */
export async function activateIfAuto(
  store: DkimKeyStore,
  domain: string,
  checks: KeyCheck[],
  options: { now: number; retireAfter: number },
): Promise<DkimKeyRecord[]> {
  const pending = checks.filter((c) => c.key.state === 'pending');
  if (pending.length === 0 || !pending.every((c) => c.key.autoActivate && c.check.status === 'found')) return [];
  return activate(store, domain, pending, options);
}

async function activate(
  store: DkimKeyStore,
  domain: string,
  pending: KeyCheck[],
  options: { now: number; retireAfter: number },
): Promise<DkimKeyRecord[]> {
  if (!(await store.activatePending(domain, options.now, options.now + options.retireAfter))) return [];
  return pending.map((c) => ({ ...c.key, state: 'active', activatedAt: options.now }));
}

/** The DNS record of a key and what the operator should do with it now. */
export function keyDnsAction(key: DkimKeyRecord): { name: string; value: string; action: string } {
  const name = dkimName(key.domain, key.selector);
  const value = dkimValue(key);
  switch (key.state) {
    case 'pending':
      if (key.publishedAt === null) return { name, value, action: `publish: TXT ${name} "${value}"` };
      return {
        name,
        value,
        action: key.autoActivate
          ? 'published: activates at the next check'
          : `published: run \`relay domain activate-key ${key.domain}\` to sign with it`,
      };
    case 'active':
      return { name, value, action: 'keep published: signs mail' };
    case 'retiring':
      return { name, value, action: `keep published until ${new Date(key.retireAt!).toISOString()}, then delete` };
    case 'retired':
      return { name, value, action: `delete the TXT record at ${name}` };
  }
}

/** Shown in listings: "retiring until 2026-12-04T10:00:00.000Z" for a retiring key. */
export function keyStateLabel(key: DkimKeyRecord): string {
  return key.state === 'retiring' ? `retiring until ${new Date(key.retireAt!).toISOString()}` : key.state;
}
