/**
 * The address list of a From or Sender header, read strictly. The sender policy checks the
 * domains of exactly these addresses, and a receiving mail client or DMARC check must not be
 * able to read another address out of the same header. So only the plain forms are accepted:
 * `addr@domain` and `[display name] <addr@domain>`, comma-separated, where a display name is
 * atoms, quoted strings, dots and encoded words. Refused: comments, groups, address literals,
 * quoted local parts, anything after the `>`, empty list members, control characters; and any
 * header on which nodemailer's RFC 5322 parser reads other addresses than this reading does.
 */
import addressparser from 'nodemailer/lib/addressparser';

export type MailboxList = { addresses: string[] } | { error: string };

// RFC 5322 atext, plus UTF-8 (RFC 6532) other than controls, invisible formatting characters and U+FFFD (bytes that were not UTF-8).
const ATEXT = /[A-Za-z0-9!#$%&'*+/=?^_`{|}~\-\u00A0-\u200A\u200C-\u205F\u2061-\uFEFE\uFF00-\uFFFC\u{10000}-\u{10FFFF}]/u;
const LABEL =
  /^[A-Za-z0-9\u00A0-\uFFFC\u{10000}-\u{10FFFF}](?:[A-Za-z0-9\-\u00A0-\uFFFC\u{10000}-\u{10FFFF}]*[A-Za-z0-9\u00A0-\uFFFC\u{10000}-\u{10FFFF}])?$/u;

type Token = { kind: 'atom' | 'quoted'; text: string } | { kind: '<' | '>' | ',' | '@' | '.' | 'space'; text: string };

function tokenize(value: string): Token[] | { error: string } {
  const tokens: Token[] = [];
  const chars = [...value];
  for (let i = 0; i < chars.length;) {
    const c = chars[i]!;
    if (c === ' ' || c === '\t') {
      while (chars[i] === ' ' || chars[i] === '\t') i++;
      tokens.push({ kind: 'space', text: ' ' });
    } else if (c === '"') {
      let text = '';
      for (i++; ; i++) {
        if (i >= chars.length) return { error: 'has an unterminated quoted string' };
        const q = chars[i]!;
        if (q === '"') break;
        if (q === '\\') {
          if (i + 1 >= chars.length) return { error: 'has an unterminated quoted string' };
          text += chars[++i]!;
        } else text += q;
        if (/[\x00-\x08\x0A-\x1F\x7F]/.test(chars[i]!)) return { error: 'has a control character' };
      }
      i++;
      tokens.push({ kind: 'quoted', text });
    } else if (c === '<' || c === '>' || c === ',' || c === '@' || c === '.') {
      tokens.push({ kind: c, text: c });
      i++;
    } else if (ATEXT.test(c)) {
      let text = '';
      while (i < chars.length && ATEXT.test(chars[i]!)) text += chars[i++]!;
      tokens.push({ kind: 'atom', text });
    } else if (c === '(' || c === ')') {
      return { error: 'has a comment (parentheses), which is not accepted' };
    } else if (c === ':' || c === ';') {
      return { error: 'uses group syntax, which is not accepted' };
    } else if (c === '[' || c === ']') {
      return { error: 'has an address literal, which is not accepted' };
    } else {
      return { error: `has a character that is not allowed there (U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')})` };
    }
  }
  return tokens;
}

/** `local@domain` from tokens with no space between them: dot-atoms on both sides. */
function addrSpec(tokens: Token[]): string | { error: string } {
  if (tokens.length === 0) return { error: 'has an empty address' };
  if (tokens.some((t) => t.kind === 'space')) return { error: 'has spaces inside an address' };
  if (tokens.some((t) => t.kind === 'quoted')) return { error: 'has a quoted local part, which is not accepted' };
  const at = tokens.findIndex((t) => t.kind === '@');
  if (at === -1 || tokens.findIndex((t, i) => i > at && t.kind === '@') !== -1) return { error: 'has an address without exactly one @' };
  const dotAtom = (part: Token[]) =>
    part.length > 0 && part.every((t, i) => (i % 2 === 0 ? t.kind === 'atom' : t.kind === '.')) && part.length % 2 === 1;
  const local = tokens.slice(0, at);
  const domain = tokens.slice(at + 1);
  if (!dotAtom(local)) return { error: 'has an address with an empty or malformed local part' };
  if (!dotAtom(domain) || !domain.every((t) => t.kind === '.' || LABEL.test(t.text)))
    return { error: 'has an address with a malformed domain' };
  return tokens.map((t) => t.text).join('');
}

function mailbox(tokens: Token[]): string | { error: string } {
  if (tokens.every((t) => t.kind === 'space')) return { error: 'has an empty list member' };
  const first = tokens.findIndex((t) => t.kind !== 'space');
  const last = tokens.length - 1 - [...tokens].reverse().findIndex((t) => t.kind !== 'space');
  const trimmed = tokens.slice(first, last + 1);
  const open = trimmed.findIndex((t) => t.kind === '<');
  if (open === -1) {
    if (trimmed.some((t) => t.kind === '>')) return { error: 'has a > without <' };
    return addrSpec(trimmed);
  }
  const close = trimmed.findIndex((t) => t.kind === '>');
  if (close === -1 || close < open) return { error: 'has a < without >' };
  if (close !== trimmed.length - 1) return { error: 'has text after the address in <>' };
  const phrase = trimmed.slice(0, open);
  if (!phrase.every((t) => t.kind === 'atom' || t.kind === 'quoted' || t.kind === '.' || t.kind === 'space')) {
    return { error: 'has a display name with characters that need quoting (@, <, >)' };
  }
  return addrSpec(trimmed.slice(open + 1, close));
}

export function parseMailboxList(value: string): MailboxList {
  const tokens = tokenize(value);
  if ('error' in tokens) return tokens;
  const members: Token[][] = [[]];
  for (const token of tokens) {
    if (token.kind === ',') members.push([]);
    else members[members.length - 1]!.push(token);
  }
  const addresses: string[] = [];
  for (const member of members) {
    const address = mailbox(member);
    if (typeof address !== 'string') return address;
    addresses.push(address);
  }
  // A second, standard reading must find exactly the same addresses.
  const standard = addressparser(value);
  const theirs = standard.flatMap((entry) => ('group' in entry && entry.group ? [null] : [('address' in entry && entry.address) || null]));
  const same = theirs.length === addresses.length && theirs.every((a, i) => a !== null && a.toLowerCase() === addresses[i]!.toLowerCase());
  if (!same) return { error: 'is read differently by other parsers' };
  return { addresses };
}
