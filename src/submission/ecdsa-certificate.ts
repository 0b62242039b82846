/**
 * A self-signed ECDSA P-256 certificate made with node:crypto alone: the key pair and the
 * signature come from node:crypto, and this file only lays out the DER of an X.509 v3
 * certificate (RFC 5280) around them. selfsigned's EC path cannot be used with the installed
 * @peculiar packages (two copies of @peculiar/asn1-schema that do not know each other's types).
 */
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';

const tlv = (tag: number, ...content: Buffer[]): Buffer => {
  const body = Buffer.concat(content);
  const n = body.length;
  const length = n < 0x80 ? Buffer.from([n]) : n < 0x100 ? Buffer.from([0x81, n]) : Buffer.from([0x82, n >> 8, n & 0xff]);
  return Buffer.concat([Buffer.from([tag]), length, body]);
};
const sequence = (...content: Buffer[]) => tlv(0x30, ...content);
const oid = (dotted: string): Buffer => {
  const [a, b, ...rest] = dotted.split('.').map(Number);
  const bytes = [a! * 40 + b!];
  for (const n of rest) {
    const groups = [n & 0x7f];
    for (let v = n >> 7; v > 0; v >>= 7) groups.unshift((v & 0x7f) | 0x80);
    bytes.push(...groups);
  }
  return tlv(0x06, Buffer.from(bytes));
};
const utf8 = (text: string) => tlv(0x0c, Buffer.from(text));
/** GeneralizedTime, valid for any year (UTCTime stops at 2049). */
const time = (at: Date) =>
  tlv(
    0x18,
    Buffer.from(
      at
        .toISOString()
        .replace(/[-:T]/g, '')
        .replace(/\.\d+Z$/, 'Z'),
    ),
  );

const ECDSA_WITH_SHA256 = sequence(oid('1.2.840.10045.4.3.2'));

export function createEcdsaCertificate(hostname: string, notAfter: Date): { cert: string; private: string } {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  // DER wants a positive, minimal INTEGER: first byte 0x40-0x7f (top bit clear, never a leading zero).
  const serial = randomBytes(16);
  serial[0] = (serial[0]! & 0x3f) | 0x40;
  const name = sequence(tlv(0x31, sequence(oid('2.5.4.3'), utf8(hostname))));
  const subjectAltName = sequence(oid('2.5.29.17'), tlv(0x04, sequence(tlv(0x82, Buffer.from(hostname)))));
  const tbs = sequence(
    tlv(0xa0, tlv(0x02, Buffer.from([2]))),
    tlv(0x02, serial),
    ECDSA_WITH_SHA256,
    name,
    sequence(time(new Date()), time(notAfter)),
    name,
    publicKey.export({ type: 'spki', format: 'der' }),
    tlv(0xa3, sequence(subjectAltName)),
  );
  const signature = sign('sha256', tbs, privateKey);
  const der = sequence(tbs, ECDSA_WITH_SHA256, tlv(0x03, Buffer.from([0]), signature));
  const base64 = der.toString('base64').replace(/.{64}/g, '$&\n');
  return {
    cert: `-----BEGIN CERTIFICATE-----\n${base64}${base64.endsWith('\n') ? '' : '\n'}-----END CERTIFICATE-----\n`,
    private: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
  };
}
