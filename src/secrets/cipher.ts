/**
 * Sealing secrets for storage with AES-256-GCM: `enc:v1:<key id>:<iv>:<tag>:<ciphertext>`
 * (base64url parts). The key id (the first 8 bytes of the key's SHA-256, in hex) says which key
 * sealed a value without revealing it; the purpose (dkim, webhook) is authenticated data, so a
 * sealed value copied into another kind of field does not open.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

const PREFIX = 'enc:v1:';
export type SecretPurpose = 'dkim' | 'webhook';

export const isSealed = (stored: string) => stored.startsWith('enc:');

/** The id of the key that sealed a value, or undefined for plain text. */
export function sealedKeyId(stored: string): string | undefined {
  return isSealed(stored) ? stored.split(':')[2] : undefined;
}

export class SecretCipher {
  readonly id: string;

  constructor(private readonly key: Buffer) {
    if (key.length !== 32) throw new Error('a secrets key must be 32 bytes');
    this.id = createHash('sha256').update(key).digest('hex').slice(0, 16);
  }

  seal(plain: string, purpose: SecretPurpose): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    cipher.setAAD(Buffer.from(`relay:${purpose}`));
    const ciphertext = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
    return `${PREFIX}${this.id}:${[iv, cipher.getAuthTag(), ciphertext].map((b) => b.toString('base64url')).join(':')}`;
  }

  /** Plain text as it is; a sealed value under this key opened, else an error saying why. */
  open(stored: string, purpose: SecretPurpose): string {
    if (!isSealed(stored)) return stored;
    const parts = stored.split(':');
    if (parts.length !== 6 || `${parts[0]}:${parts[1]}:` !== PREFIX) throw new Error(`a stored ${purpose} secret has an unknown format`);
    if (parts[2] !== this.id)
      throw new Error(`a stored ${purpose} secret is encrypted under key ${parts[2]}, not the configured key ${this.id}`);
    const [iv, tag, ciphertext] = parts.slice(3).map((p) => Buffer.from(p, 'base64url')) as [Buffer, Buffer, Buffer];
    const decipher = createDecipheriv('aes-256-gcm', this.key, iv);
    decipher.setAAD(Buffer.from(`relay:${purpose}`));
    decipher.setAuthTag(tag);
    try {
      return Buffer.concat([decipher.update(ciphertext), decipher.final()]).toString('utf8');
    } catch {
      throw new Error(`a stored ${purpose} secret does not open with key ${this.id}: it was altered`);
    }
  }
}
