/**
 * Authenticating an MX certificate chain against TLSA records (RFC 7671, RFC 7672): DANE-EE(3)
 * matches the server's own certificate or key, with no name or date checks; DANE-TA(2) matches a
 * certificate of the presented chain that must have issued the chain down to a server
 * certificate valid now for the MX name.
 */
import { createHash, X509Certificate } from 'node:crypto';
import type { DetailedPeerCertificate } from 'node:tls';
import type { TlsaRecord } from './tlsa.js';

export type DaneResult = { ok: true } | { ok: false; reason: string };

/** The presented chain, server certificate first, as the peer sent it. */
export function presentedChain(peer: DetailedPeerCertificate | undefined): X509Certificate[] {
  const chain: X509Certificate[] = [];
  const seen = new Set<string>();
  for (let cert = peer; cert?.raw && !seen.has(cert.fingerprint256); cert = cert.issuerCertificate) {
    seen.add(cert.fingerprint256);
    chain.push(new X509Certificate(cert.raw));
  }
  return chain;
}

export function matchTlsa(records: TlsaRecord[], chain: X509Certificate[], host: string, now: number): DaneResult {
  const leaf = chain[0];
  if (!leaf) return { ok: false, reason: 'no certificate presented' };
  if (records.some((r) => r.usage === 3 && matches(r, leaf))) return { ok: true };
  for (const r of records.filter((record) => record.usage === 2)) {
    const anchor = chain.findIndex((cert) => matches(r, cert));
    if (anchor < 0) continue;
    if (!issuedDownFrom(chain, anchor)) return { ok: false, reason: 'the chain does not lead to the DANE-TA certificate' };
    if (!leaf.checkHost(host, { subject: 'default' })) return { ok: false, reason: `the certificate is not for ${host}` };
    if (Date.parse(leaf.validTo) < now || Date.parse(leaf.validFrom) > now)
      return { ok: false, reason: 'the certificate is not valid now' };
    return { ok: true };
  }
  return { ok: false, reason: 'no TLSA record matches the certificate chain' };
}

function matches(record: TlsaRecord, cert: X509Certificate): boolean {
  const selected = record.selector === 0 ? cert.raw : cert.publicKey.export({ type: 'spki', format: 'der' });
  const digest =
    record.matchingType === 0
      ? selected
      : createHash(record.matchingType === 1 ? 'sha256' : 'sha512')
          .update(selected)
          .digest();
  return digest.equals(record.data);
}

/** Each certificate from the server's up to `anchor` is signed by the next one. */
function issuedDownFrom(chain: X509Certificate[], anchor: number): boolean {
  for (let i = 0; i < anchor; i++) {
    const cert = chain[i]!;
    const issuer = chain[i + 1]!;
    if (!cert.checkIssued(issuer) || !cert.verify(issuer.publicKey)) return false;
  }
  return true;
}
