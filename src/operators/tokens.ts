/**
 * Operator tokens: "ro_" + a token id + "." + a secret of 32 random bytes, shown once. Storage
 * keeps the id (to find the operator) and a SHA-256 of the secret, compared in constant time;
 * like an API key the secret has 256 bits of entropy, so a fast hash cannot be brute-forced.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { OperatorRecord, OperatorStore } from '../queue/storage.js';

const TOKEN = /^ro_([A-Za-z0-9_-]{16})\.([A-Za-z0-9_-]{43})$/;

const hashSecret = (secret: string) => createHash('sha256').update(secret).digest('hex');

export interface IssuedToken {
  token: string;
  tokenId: string;
  tokenHash: string;
}

export function newOperatorToken(): IssuedToken {
  const tokenId = randomBytes(12).toString('base64url');
  const secret = randomBytes(32).toString('base64url');
  return { token: `ro_${tokenId}.${secret}`, tokenId, tokenHash: hashSecret(secret) };
}

export const looksLikeOperatorToken = (token: string): boolean => TOKEN.test(token);

/** The active operator this token belongs to, or undefined. */
export async function operatorOfToken(store: Pick<OperatorStore, 'byTokenId'>, token: string): Promise<OperatorRecord | undefined> {
  const match = TOKEN.exec(token);
  if (!match) return undefined;
  const operator = await store.byTokenId(match[1]!);
  if (!operator) return undefined;
  const stored = Buffer.from(operator.tokenHash, 'hex');
  const given = Buffer.from(hashSecret(match[2]!), 'hex');
  return stored.length === given.length && timingSafeEqual(stored, given) ? operator : undefined;
}
