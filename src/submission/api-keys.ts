/**
 * API keys: 32 random bytes behind a recognisable prefix, shown once. Only a SHA-256 of the key
 * is stored: unlike a password the key carries 256 bits of entropy, so a fast hash cannot be
 * brute-forced and every request can be checked without scrypt's cost.
 */
import { createHash, randomBytes } from 'node:crypto';

const PREFIX = 'rk_';

export function newApiKey(): string {
  return PREFIX + randomBytes(32).toString('base64url');
}

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}
