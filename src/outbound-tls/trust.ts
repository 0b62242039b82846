/**
 * The CAs outbound TLS trusts, for MTA-STS policy fetches and MX certificates: the system's
 * plus delivery.tls_ca_file. Re-read when the file or the setting changes (SIGHUP).
 */
import { readFileSync, statSync } from 'node:fs';
import { rootCertificates } from 'node:tls';

let cached: { key: string; cas: string[] } | undefined;

export function trustedCas(caFile: string | undefined): string[] {
  if (!caFile) return [...rootCertificates];
  const key = `${caFile}:${statSync(caFile).mtimeMs}`;
  if (cached?.key !== key) cached = { key, cas: [...rootCertificates, readFileSync(caFile, 'utf8')] };
  return cached.cas;
}
