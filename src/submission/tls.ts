/**
 * The listeners' certificate: the configured PEM files, or, when neither exists yet, a
 * self-signed pair generated there on first start so a fresh install serves TLS at once.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import selfsigned from 'selfsigned';
import type { Logger } from '../log.js';

export interface TlsMaterial {
  key: Buffer;
  cert: Buffer;
}

export async function loadOrCreateCertificate(
  files: { cert: string; key: string },
  hostname: string,
  logger: Logger,
): Promise<TlsMaterial> {
  const haveCert = existsSync(files.cert);
  const haveKey = existsSync(files.key);
  if (!haveCert && !haveKey) {
    const notAfter = new Date();
    notAfter.setFullYear(notAfter.getFullYear() + 2);
    const pems = await selfsigned.generate([{ name: 'commonName', value: hostname }], {
      keySize: 2048,
      algorithm: 'sha256',
      notAfterDate: notAfter,
      extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: hostname }] }],
    });
    mkdirSync(path.dirname(files.cert), { recursive: true });
    mkdirSync(path.dirname(files.key), { recursive: true });
    writeFileSync(files.key, pems.private, { mode: 0o600 });
    writeFileSync(files.cert, pems.cert);
    logger.warn({ cert: files.cert, key: files.key }, 'generated a self-signed certificate; configure tls.cert/tls.key for production');
  } else if (!haveCert || !haveKey) {
    throw new Error(`tls: ${haveCert ? files.key : files.cert} is missing (both tls.cert and tls.key must exist, or neither)`);
  }
  return { key: readFileSync(files.key), cert: readFileSync(files.cert) };
}
