/**
 * Typed access to the mailauth internals the DKIM signer is built from. They are CommonJS
 * files without type declarations, so they are loaded with createRequire and given the
 * narrow types Relay relies on.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

interface ParsedHeader {
  key: string | null;
  casedKey: string | undefined;
  line: Buffer;
}

interface SigningHeaderLines {
  keys: string;
  headers: ParsedHeader[];
}

/** The tag values of a DKIM-Signature header (a=, c=, d=, s=, h=, bh=, t=, b=, ...). */
type SignatureTags = Record<string, string | number>;

interface BodyHasher {
  update(chunk: Buffer): void;
  digest(encoding: 'base64'): string;
}

interface Tools {
  defaultDKIMFieldNames: string;
  parseHeaders(headers: Buffer): { parsed: ParsedHeader[]; original: Buffer };
  getSigningHeaderLines(parsed: ParsedHeader[], fieldNames: string): SigningHeaderLines;
  formatSignatureHeaderLine(type: 'DKIM', tags: SignatureTags, folded: boolean): string;
}

interface HeaderCanonicalization {
  generateCanonicalizedHeader(
    type: 'DKIM',
    lines: SigningHeaderLines,
    options: {
      signingDomain: string;
      selector: string;
      algorithm: string;
      canonicalization: string;
      bodyHash: string;
      signTime: Date;
    },
  ): { canonicalizedHeader: Buffer; dkimHeaderOpts: SignatureTags };
}

interface BodyCanonicalization {
  dkimBody(canonicalization: 'relaxed' | 'simple', hashAlgorithm: 'sha256', maxBodyLength: false): BodyHasher;
}

export const tools = require('mailauth/lib/tools') as Tools;
export const { generateCanonicalizedHeader } = require('mailauth/lib/dkim/header') as HeaderCanonicalization;
export const { dkimBody } = require('mailauth/lib/dkim/body') as BodyCanonicalization;
