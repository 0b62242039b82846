/**
 * The tokens Relay hands to the receiving side and takes back: the VERP return path
 * (b+TOKEN@return-path-domain, naming a message's recipient row) and the one-click unsubscribe
 * token (naming the credential and the address, so it outlives the message's retention). Both
 * are HMAC-SHA256-signed with the key every node reads from storage, and written in lower-case
 * base32, which survives mail systems that fold the case of local parts.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';
/** 80 bits of MAC: forging one takes 2^80 guesses, each a mail or a request. */
const MAC_BYTES = 10;

export function base32(bytes: Buffer): string {
  let out = '';
  let bits = 0;
  let value = 0;
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += ALPHABET[(value << (5 - bits)) & 31];
  return out;
}

export function fromBase32(text: string): Buffer | undefined {
  const bytes: number[] = [];
  let bits = 0;
  let value = 0;
  for (const char of text.toLowerCase()) {
    const digit = ALPHABET.indexOf(char);
    if (digit < 0) return undefined;
    value = ((value << 5) | digit) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      bytes.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(bytes);
}

export interface ReturnPathToken {
  queueId: string;
  recipientId: number;
}

export interface UnsubscribeToken {
  /** '' when the link was made before the message had one (a template's {{unsubscribe_url}}). */
  queueId: string;
  credential: string;
  address: string;
}

export class FeedbackTokens {
  constructor(private readonly key: Buffer) {}

  /** The local part after "b+": queue id, recipient row id, MAC. */
  returnPath(token: ReturnPathToken): string {
    const body = `${token.queueId.toLowerCase()}-${token.recipientId.toString(36)}`;
    return `${body}-${this.mac('return-path', body)}`;
  }

  readReturnPath(text: string): ReturnPathToken | undefined {
    const match = /^([0-9a-z]{1,40})-([0-9a-z]{1,12})-([a-z2-7]{16})$/.exec(text.toLowerCase());
    if (!match) return undefined;
    const body = `${match[1]}-${match[2]}`;
    if (!this.macMatches('return-path', body, match[3]!)) return undefined;
    return { queueId: match[1]!.toUpperCase(), recipientId: parseInt(match[2]!, 36) };
  }

  unsubscribe(token: UnsubscribeToken): string {
    const body = base32(Buffer.from([token.queueId, token.credential, token.address].join('\n'), 'utf8'));
    return `${body}${this.mac('unsubscribe', body)}`;
  }

  readUnsubscribe(text: string): UnsubscribeToken | undefined {
    const lower = text.toLowerCase();
    const macLength = Math.ceil((MAC_BYTES * 8) / 5);
    if (!/^[a-z2-7]+$/.test(lower) || lower.length <= macLength) return undefined;
    const body = lower.slice(0, -macLength);
    if (!this.macMatches('unsubscribe', body, lower.slice(-macLength))) return undefined;
    const parts = fromBase32(body)?.toString('utf8').split('\n');
    if (parts?.length !== 3 || !parts[1] || !parts[2]) return undefined;
    return { queueId: parts[0]!, credential: parts[1], address: parts[2] };
  }

  private mac(purpose: string, body: string): string {
    return base32(createHmac('sha256', this.key).update(`${purpose}\n${body}`).digest().subarray(0, MAC_BYTES));
  }

  private macMatches(purpose: string, body: string, mac: string): boolean {
    const want = Buffer.from(this.mac(purpose, body));
    const have = Buffer.from(mac);
    return want.length === have.length && timingSafeEqual(want, have);
  }
}
