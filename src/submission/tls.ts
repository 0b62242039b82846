/**
 * The listeners' certificate. A certificate named in the config (tls.cert and tls.key) must
 * exist and match its key: a missing or wrong file is an error, never silently replaced. Only
 * `tls: self_signed` (the default when the config has no tls key) generates a self-signed pair,
 * once, next to the database, so a fresh install serves TLS at once.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import selfsigned from 'selfsigned';
import type { Logger } from '../log.js';

export interface TlsMaterial {
  key: Buffer;
  cert: Buffer;
}

export interface TlsFiles {
  cert: string;
  key: string;
  /** True for `tls: self_signed`: the files are Relay's own and are generated when absent. */
  selfSigned: boolean;
}

export class TlsConfigError extends Error {}

export async function loadCertificate(files: TlsFiles, hostname: string, logger: Logger): Promise<TlsMaterial> {
  const both = `certificate ${files.cert} and key ${files.key}`;
  const haveCert = existsSync(files.cert);
  const haveKey = existsSync(files.key);
  if (files.selfSigned && !haveCert && !haveKey) {
    await createSelfSignedCertificate(files, hostname);
    logger.warn(
      { cert: files.cert, key: files.key },
      'generated a self-signed certificate (tls: self_signed); name a real one in tls.cert/tls.key for production',
    );
  } else if (!haveCert || !haveKey) {
    const missing = [!haveCert && files.cert, !haveKey && files.key].filter(Boolean).join(' and ');
    throw new TlsConfigError(`tls: ${both}: ${missing} ${missing.includes(' and ') ? 'do' : 'does'} not exist`);
  }
  let material: TlsMaterial;
  try {
    material = { key: readFileSync(files.key), cert: readFileSync(files.cert) };
  } catch (err) {
    throw new TlsConfigError(`tls: ${both}: cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  checkPair(material, both);
  return material;
}

/** The certificate must parse, the key must parse, and the key must be the certificate's. */
function checkPair(material: TlsMaterial, both: string): void {
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(material.cert);
  } catch (err) {
    throw new TlsConfigError(`tls: ${both}: the certificate is not a PEM certificate (${(err as Error).message})`);
  }
  let matches: boolean;
  try {
    matches = certificate.checkPrivateKey(createPrivateKey(material.key));
  } catch (err) {
    throw new TlsConfigError(`tls: ${both}: the key is not a PEM private key (${(err as Error).message})`);
  }
  if (!matches) throw new TlsConfigError(`tls: ${both} do not match: the key is not the certificate's`);
}

export async function createSelfSignedCertificate(files: { cert: string; key: string }, hostname: string): Promise<void> {
  const notAfter = new Date();
  notAfter.setFullYear(notAfter.getFullYear() + 2);
  const pems = await selfsigned.generate([{ name: 'commonName', value: hostname }], {
    keySize: 2048,
    algorithm: 'sha256',
    notAfterDate: notAfter,
    extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: hostname }] }],
  });
  // Usually the data directory, which holds secrets too.
  mkdirSync(path.dirname(files.cert), { recursive: true, mode: 0o700 });
  mkdirSync(path.dirname(files.key), { recursive: true, mode: 0o700 });
  writeFileSync(files.key, pems.private, { mode: 0o600 });
  writeFileSync(files.cert, pems.cert);
}
