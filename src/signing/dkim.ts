/**
 * DKIM signing (RFC 6376, relaxed/relaxed; rsa-sha256 or ed25519-sha256 per RFC 8463).
 * Signing mirrors mailauth's DkimSigner.finalize() from its building blocks, but synchronously
 * and with the parsed private key cached: parsing the PEM per message halves throughput.
 */
import crypto, { type KeyObject } from 'node:crypto';
import { blankLineAt, HEADER_END, joinParts, type MessageParts } from '../envelope/header.js';
import type { DkimAlgorithm } from './keys.js';
import { dkimBody, generateCanonicalizedHeader, tools } from './mailauth.js';

export { generateDkimKey, type DkimAlgorithm } from './keys.js';

const CR = 0x0d;
const LF = 0x0a;

export interface DkimKey {
  domain: string;
  selector: string;
  algorithm: DkimAlgorithm;
  privateKeyPem: string;
}

/** mailauth's list, plus List-Unsubscribe-Post: RFC 8058 one-click needs it signed. */
const SIGNED_FIELDS = `${tools.defaultDKIMFieldNames}:List-Unsubscribe-Post`;

export class DkimSigner {
  private readonly keys = new Map<string, KeyObject>();

  /**
   * Returns the message with a DKIM-Signature header prepended (and the blank line that ends the
   * header added if the message has none). `message` must use CRLF line endings.
   */
  sign(message: Buffer, key: DkimKey): Buffer {
    const split = splitMessage({ head: message, rest: [] });
    const pending = this.prepare(split.headers, bodyHash(split.body), key);
    return joinParts(
      withFields([pending.headerLine(crypto.sign(pending.hashAlgorithm, pending.signedData, pending.privateKey))], split.message),
    );
  }

  /**
   * Signs with every key (dual signing: RSA for receivers that verify only RSA, Ed25519 beside
   * it), each signature over the message as given, one DKIM-Signature header per key in order.
   * The private-key operations (most of the cost: about 0.9 ms for RSA-2048) run on libuv's
   * thread pool, so they use the other cores and leave the event loop free. Only the head is
   * copied: the body's pieces are returned as they came, so a big message is never joined.
   */
  async signAllAsync(message: MessageParts, keys: DkimKey[]): Promise<MessageParts> {
    if (keys.length === 0) return message;
    const split = splitMessage(message);
    const hash = bodyHash(split.body);
    const pending = keys.map((key) => this.prepare(split.headers, hash, key));
    const headerLines = await Promise.all(
      pending.map(
        (p) =>
          new Promise<string>((resolve, reject) =>
            crypto.sign(p.hashAlgorithm, p.signedData, p.privateKey, (err, signature) =>
              err ? reject(err) : resolve(p.headerLine(signature)),
            ),
          ),
      ),
    );
    return withFields(headerLines, split.message);
  }

  /** The canonicalized header for a key; what remains is the signature over `signedData`. */
  private prepare(headers: Buffer, bodyHash: string, key: DkimKey) {
    const privateKey = this.privateKey(key);
    const algorithm = `${key.algorithm}-sha256`;
    const signingHeaderLines = tools.getSigningHeaderLines(tools.parseHeaders(headers).parsed, SIGNED_FIELDS);
    const { canonicalizedHeader, dkimHeaderOpts } = generateCanonicalizedHeader('DKIM', signingHeaderLines, {
      signingDomain: key.domain,
      selector: key.selector,
      algorithm,
      canonicalization: 'relaxed/relaxed',
      bodyHash,
      // An explicit time keeps t= identical in the signed and the emitted header; left unset,
      // mailauth takes the clock twice and a second boundary in between breaks the signature.
      signTime: new Date(),
    });

    const rsa = key.algorithm === 'rsa';
    return {
      privateKey,
      hashAlgorithm: rsa ? algorithm : null,
      // RFC 8463: ed25519 signs the SHA-256 digest of the canonicalized header.
      signedData: rsa ? canonicalizedHeader : crypto.createHash('sha256').update(canonicalizedHeader).digest(),
      headerLine: (signature: Buffer) =>
        tools.formatSignatureHeaderLine('DKIM', { ...dkimHeaderOpts, b: signature.toString('base64') }, true),
    };
  }

  private privateKey(key: DkimKey): KeyObject {
    let privateKey = this.keys.get(key.privateKeyPem);
    if (!privateKey) {
      privateKey = crypto.createPrivateKey(key.privateKeyPem);
      if (privateKey.asymmetricKeyType !== key.algorithm) {
        throw new Error(`DKIM key for ${key.domain} is ${privateKey.asymmetricKeyType}, expected ${key.algorithm}`);
      }
      this.keys.set(key.privateKeyPem, privateKey);
    }
    return privateKey;
  }
}

/** The message with the DKIM-Signature fields on top of its head. */
function withFields(fieldLines: string[], { head, rest }: MessageParts): MessageParts {
  return { head: Buffer.concat([Buffer.from(fieldLines.map((line) => `${line}\r\n`).join('')), head]), rest };
}

/**
 * The message (with the blank line that ends the header added if it has none), its header block
 * with that blank line, and its body in pieces. A message with no blank line is all header:
 * mailauth's verifier (and others) would see no header at all without one.
 */
function splitMessage({ head, rest }: MessageParts): { message: MessageParts; headers: Buffer; body: Buffer[] } {
  if (rest.length && blankLineAt(head) < 0) [head, rest] = [Buffer.concat([head, ...rest]), []];
  let end = blankLineAt(head);
  if (end < 0) {
    const endsWithCrlf = head.length >= 2 && head[head.length - 2] === CR && head[head.length - 1] === LF;
    head = Buffer.concat([head, Buffer.from(endsWithCrlf ? '\r\n' : '\r\n\r\n')]);
    end = head.length - HEADER_END.length;
  }
  const bodyStart = end + HEADER_END.length;
  return { message: { head, rest }, headers: head.subarray(0, bodyStart), body: [head.subarray(bodyStart), ...rest] };
}

/**
 * The relaxed/sha256 body hash of a body in pieces. mailauth's hasher joins each update to the
 * unfinished line left from the one before (copying the update), so it is given whole lines:
 * each piece up to its last LF, the unfinished line carried over to the next.
 */
function bodyHash(pieces: Buffer[]): string {
  const hasher = dkimBody('relaxed', 'sha256', false);
  let carried: Buffer[] = [];
  for (const piece of pieces) {
    const lastLf = piece.lastIndexOf(LF);
    if (lastLf < 0) {
      carried.push(piece);
      continue;
    }
    let from = 0;
    if (carried.length) {
      from = piece.indexOf(LF) + 1;
      hasher.update(Buffer.concat([...carried, piece.subarray(0, from)]));
      carried = [];
    }
    if (from <= lastLf) hasher.update(piece.subarray(from, lastLf + 1));
    if (lastLf + 1 < piece.length) carried.push(piece.subarray(lastLf + 1));
  }
  if (carried.length) hasher.update(Buffer.concat(carried));
  return hasher.digest('base64');
}
