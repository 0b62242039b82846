/** DKIM signatures made by DkimSigner must verify with mailauth against the generated public key. */
import { describe, expect, it } from 'vitest';
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';
import { DkimSigner, generateDkimKey, type DkimAlgorithm } from '../src/signing/dkim.js';

const crlf = (lines: string[]) => Buffer.from(lines.join('\r\n'), 'utf8');

const HEADERS = [
  'From: Alice <alice@acme.test>',
  'To: bob@example.org',
  'Subject: Hello   there',
  'Date: Thu, 26 Nov 2026 07:00:00 +0000',
  'Message-ID: <1@acme.test>',
  'MIME-Version: 1.0',
];

const MESSAGES: Record<string, Buffer> = {
  'plain text': crlf([
    ...HEADERS,
    'Content-Type: text/plain; charset=us-ascii',
    '',
    'Hi Bob,',
    '',
    'trailing spaces   ',
    '\tand tabs',
    '',
    '',
    '',
  ]),
  'empty body': crlf([...HEADERS, '', '']),
  'no body separator': crlf([...HEADERS, '']),
  '8-bit body': Buffer.concat([
    crlf([...HEADERS, 'Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: 8bit', '', '']),
    Buffer.from('Grüße aus Köln — ünïcödé\r\n', 'utf8'),
    Buffer.from([0xe9, 0xff, 0x80, 0x0d, 0x0a]),
  ]),
  'folded header': crlf([...HEADERS, 'References: <a@acme.test>', '\t<b@acme.test>', '', 'body', '']),
};

async function verify(signed: Buffer, algorithm: DkimAlgorithm, publicKey: string) {
  const record = `v=DKIM1; k=${algorithm}; p=${publicKey}`;
  const { results } = await dkimVerify(signed, {
    resolver: async (name: string, type: string) => {
      if (name === 'sel1._domainkey.acme.test' && type === 'TXT') {
        // Served in 255-byte strings, as DNS does.
        return [record.match(/.{1,255}/g)!];
      }
      throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' });
    },
  });
  return results;
}

describe.each(['rsa', 'ed25519'] as const)('DkimSigner (%s)', (algorithm) => {
  const { privateKeyPem, publicKey } = generateDkimKey(algorithm);
  const key = { domain: 'acme.test', selector: 'sel1', algorithm, privateKeyPem };
  const signer = new DkimSigner();

  it.each(Object.keys(MESSAGES))('signs a message with %s so that it verifies', async (name) => {
    const message = MESSAGES[name]!;
    const signed = signer.sign(message, key);

    expect(signed.subarray(0, 16).toString()).toBe('DKIM-Signature: ');
    expect(signed.includes(message)).toBe(true);

    const results = await verify(signed, algorithm, publicKey);
    expect(results).toHaveLength(1);
    expect(results[0]!.status.result).toBe('pass');
    // mailauth's typings name these algorithm and canonicalization; at run time they are algo and format.
    expect(results[0]).toMatchObject({ algo: `${algorithm}-sha256`, format: 'relaxed/relaxed' });
  });

  it('fails verification when the body is altered after signing', async () => {
    const signed = signer.sign(MESSAGES['plain text']!, key);
    const tampered = Buffer.from(signed.toString('binary').replace('Hi Bob', 'Hi Eve'), 'binary');
    const results = await verify(tampered, algorithm, publicKey);
    expect(results[0]!.status.result).not.toBe('pass');
  });
});

describe('generateDkimKey', () => {
  it('makes a 2048-bit RSA key by default with an SPKI p= value', () => {
    const { publicKey } = generateDkimKey();
    expect(Buffer.from(publicKey, 'base64').length).toBe(294);
  });

  it('gives the raw 32-byte ed25519 public key for p= (RFC 8463)', () => {
    const { publicKey } = generateDkimKey('ed25519');
    expect(Buffer.from(publicKey, 'base64').length).toBe(32);
  });
});

describe('DkimSigner key handling', () => {
  it('rejects a key whose type does not match the configured algorithm', () => {
    const { privateKeyPem } = generateDkimKey('ed25519');
    expect(() =>
      new DkimSigner().sign(MESSAGES['plain text']!, { domain: 'acme.test', selector: 's', algorithm: 'rsa', privateKeyPem }),
    ).toThrow(/ed25519, expected rsa/);
  });
});
