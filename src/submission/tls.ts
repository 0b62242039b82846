/**
 * The listeners' certificates. A certificate named in the config (tls.cert and tls.key, or a
 * list of such pairs) must exist and match its key: a missing or wrong file is an error, never
 * silently replaced. Only `tls: self_signed` (the default when the config has no tls key)
 * generates self-signed pairs, an ECDSA P-256 and an RSA one, once, next to the database, so a
 * fresh install serves TLS at once. With several pairs, OpenSSL gives each client the first
 * certificate its signature algorithms accept: ECDSA (a cheaper handshake) to most, RSA to the rest.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import selfsigned from 'selfsigned';
import type { CertificateFiles } from '../config/schema.js';
import type { Logger } from '../log.js';
import { createEcdsaCertificate } from './ecdsa-certificate.js';

/** One key and one certificate chain per pair, in the same order (node:tls takes both lists). */
export interface TlsMaterial {
  key: Buffer[];
  cert: Buffer[];
}

export interface TlsFiles {
  pairs: CertificateFiles[];
  /** True for `tls: self_signed`: the files are Relay's own and are generated when absent. */
  selfSigned: boolean;
}

export class TlsConfigError extends Error {}

export async function loadCertificate(files: TlsFiles, hostname: string, logger: Logger): Promise<TlsMaterial> {
  const material: TlsMaterial = { key: [], cert: [] };
  for (const pair of files.pairs) {
    const { key, cert } = await loadPair(pair, files.selfSigned, hostname, logger);
    material.key.push(key);
    material.cert.push(cert);
  }
  return material;
}

async function loadPair(
  files: CertificateFiles,
  selfSigned: boolean,
  hostname: string,
  logger: Logger,
): Promise<{ key: Buffer; cert: Buffer }> {
  const both = `certificate ${files.cert} and key ${files.key}`;
  const haveCert = existsSync(files.cert);
  const haveKey = existsSync(files.key);
  if (selfSigned && !haveCert && !haveKey) {
    await createSelfSignedCertificate(files, hostname, files.generate);
    logger.warn(
      { cert: files.cert, key: files.key },
      'generated a self-signed certificate (tls: self_signed); name a real one in tls.cert/tls.key for production',
    );
  } else if (!haveCert || !haveKey) {
    const missing = [!haveCert && files.cert, !haveKey && files.key].filter(Boolean).join(' and ');
    throw new TlsConfigError(`tls: ${both}: ${missing} ${missing.includes(' and ') ? 'do' : 'does'} not exist`);
  }
  let pair: { key: Buffer; cert: Buffer };
  try {
    pair = { key: readFileSync(files.key), cert: readFileSync(files.cert) };
  } catch (err) {
    throw new TlsConfigError(`tls: ${both}: cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  checkPair(pair, both);
  return pair;
}

/** The certificate must parse, the key must parse, and the key must be the certificate's. */
function checkPair(material: { key: Buffer; cert: Buffer }, both: string): void {
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

export async function createSelfSignedCertificate(
  files: { cert: string; key: string },
  hostname: string,
  algorithm: 'rsa' | 'ecdsa' = 'rsa',
): Promise<void> {
  const notAfter = new Date();
  notAfter.setFullYear(notAfter.getFullYear() + 2);
  const pems =
    algorithm === 'ecdsa'
      ? createEcdsaCertificate(hostname, notAfter)
      : await selfsigned.generate([{ name: 'commonName', value: hostname }], {
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
