/**
 * Credential password hashing: scrypt (N=16384, r=8, p=1, 16-byte salt), stored as
 * `scrypt$N$r$p$<salt b64>$<hash b64>` so the parameters can be raised later without
 * invalidating existing hashes.
 */
import { randomBytes, scrypt, scryptSync, timingSafeEqual } from 'node:crypto';

const N = 16384;
const R = 8;
const P = 1;
const SALT_BYTES = 16;
const HASH_BYTES = 32;

export function hashPassword(password: string): string {
  const salt = randomBytes(SALT_BYTES);
  const hash = scryptSync(password, salt, HASH_BYTES, { N, r: R, p: P });
  return ['scrypt', N, R, P, salt.toString('base64'), hash.toString('base64')].join('$');
}

/**
 * False for a wrong password and for anything that is not a well-formed scrypt hash. scrypt runs
 * on the thread pool, so a flood of failed logins does not stall the event loop.
 */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [n, r, p] = parts.slice(1, 4).map(Number) as [number, number, number];
  const salt = Buffer.from(parts[4]!, 'base64');
  const expected = Buffer.from(parts[5]!, 'base64');
  if (salt.length === 0 || expected.length === 0) return false;
  // Node's default 32 MiB maxmem also bounds what a corrupt stored hash can make us allocate.
  const actual = await new Promise<Buffer | undefined>((resolve) => {
    try {
      scrypt(password, salt, expected.length, { N: n, r, p }, (err, key) => resolve(err ? undefined : key));
    } catch {
      resolve(undefined);
    }
  });
  return actual !== undefined && timingSafeEqual(actual, expected);
}

/** A hash no password matches, verified against for unknown usernames so they cost what a wrong password costs. */
export const DUMMY_PASSWORD_HASH = hashPassword(randomBytes(16).toString('base64'));
