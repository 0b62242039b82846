/**
 * Credential password hashing: scrypt (N=16384, r=8, p=1, 16-byte salt), stored as
 * `scrypt$N$r$p$<salt b64>$<hash b64>` so the parameters can be raised later without
 * invalidating existing hashes. Verifying runs scrypt on libuv's thread pool: tens of
 * milliseconds of CPU per login must not stop every other session meanwhile.
 */
import { randomBytes, scrypt, scryptSync, timingSafeEqual, type ScryptOptions } from 'node:crypto';

const N = 16384;
const R = 8;
const P = 1;
const SALT_BYTES = 16;
const HASH_BYTES = 32;

/** For the CLI, which hashes one password and exits. */
export function hashPassword(password: string): string {
  const salt = randomBytes(SALT_BYTES);
  const hash = scryptSync(password, salt, HASH_BYTES, { N, r: R, p: P });
  return format(salt, hash);
}

export async function hashPasswordAsync(password: string): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  return format(salt, await scryptAsync(password, salt, HASH_BYTES, { N, r: R, p: P }));
}

const format = (salt: Buffer, hash: Buffer) => ['scrypt', N, R, P, salt.toString('base64'), hash.toString('base64')].join('$');

function scryptAsync(password: string, salt: Buffer, length: number, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => scrypt(password, salt, length, options, (err, key) => (err ? reject(err) : resolve(key))));
}

/** False for a wrong password and for anything that is not a well-formed scrypt hash. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [n, r, p] = parts.slice(1, 4).map(Number) as [number, number, number];
  const salt = Buffer.from(parts[4]!, 'base64');
  const expected = Buffer.from(parts[5]!, 'base64');
  if (salt.length === 0 || expected.length === 0) return false;
  let actual: Buffer;
  try {
    // Node's default 32 MiB maxmem also bounds what a corrupt stored hash can make us allocate.
    actual = await scryptAsync(password, salt, expected.length, { N: n, r, p });
  } catch {
    return false;
  }
  return timingSafeEqual(actual, expected);
}
