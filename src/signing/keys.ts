/**
 * DKIM key generation, apart from the signer so that the CLI can make keys without loading
 * mailauth. The public key comes out as the p= value of the DKIM TXT record.
 */
import crypto from 'node:crypto';

export type DkimAlgorithm = 'rsa' | 'ed25519';

/** An SPKI DER ed25519 public key is this 12-byte prefix followed by the raw 32-byte key. */
const ED25519_SPKI_PREFIX_LENGTH = 12;

/** A new signing key and the p= value of its DKIM TXT record. */
export function generateDkimKey(algorithm: DkimAlgorithm = 'rsa'): { privateKeyPem: string; publicKey: string } {
  const { privateKey, publicKey } =
    algorithm === 'rsa' ? crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }) : crypto.generateKeyPairSync('ed25519');
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  return {
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    // RFC 8463: for ed25519 the p= tag is the bare key, not an SPKI structure.
    publicKey: (algorithm === 'rsa' ? spki : spki.subarray(ED25519_SPKI_PREFIX_LENGTH)).toString('base64'),
  };
}
