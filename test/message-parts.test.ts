/**
 * A message kept in the chunks it arrived in (MessageParts) must come out byte for byte, and
 * signed, exactly as the same message in one Buffer would: line endings normalised across chunk
 * boundaries, the header block found wherever the chunks cut it, the DKIM body hash unchanged.
 */
import fc from 'fast-check';
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { blankLineAt, joinParts, splitHead } from '../src/envelope/header.js';
import { pieceRuns } from '../src/queue/pieces.js';
import { DkimSigner, generateDkimKey } from '../src/signing/dkim.js';
import { normaliseChunks, normaliseLineEndings } from '../src/submission/message.js';

/** The message cut at the given offsets (sorted, repeats giving empty chunks). */
function cut(message: Buffer, offsets: number[]): Buffer[] {
  const points = [0, ...offsets.map((o) => o % (message.length + 1)).sort((a, b) => a - b), message.length];
  return points.slice(1).map((end, i) => message.subarray(points[i], end));
}

/** Short messages from the bytes that matter here: line ends, whitespace, a header's colon. */
const messages = fc
  .array(fc.constantFrom('\r', '\n', '\r\n', '\r\n\r\n', ' ', '\t', 'a', 'From: a@acme.test', ':', '.'), { maxLength: 40 })
  .map((pieces) => Buffer.from(pieces.join('')));
const chunked = fc.tuple(messages, fc.array(fc.nat(), { maxLength: 8 }));

describe('normaliseChunks', () => {
  it('rewrites each bare CR and bare LF as CRLF, wherever the chunks are cut', () => {
    fc.assert(
      fc.property(chunked, ([message, offsets]) => {
        const expected = Buffer.from(message.toString('latin1').replace(/\r\n|\r|\n/g, '\r\n'), 'latin1');
        expect(normaliseLineEndings(message).equals(expected)).toBe(true);
        expect(Buffer.concat(normaliseChunks(cut(message, offsets))).equals(expected)).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('hands back the chunks themselves when they have no bare CR or LF', () => {
    const chunks = [Buffer.from('From: a@acme.test\r'), Buffer.from('\n\r\nbody\r\n')];
    expect(normaliseChunks(chunks).every((chunk, i) => chunk === chunks[i])).toBe(true);
  });
});

describe('splitHead', () => {
  it('ends the head just after the first blank line, wherever the chunks are cut, and keeps every byte', () => {
    fc.assert(
      fc.property(chunked, ([raw, offsets]) => {
        const message = normaliseLineEndings(raw);
        const { head, rest } = splitHead(cut(message, offsets));
        expect(Buffer.concat([head, ...rest]).equals(message)).toBe(true);
        const blank = blankLineAt(message);
        expect(head.length).toBe(blank < 0 ? message.length : blank + 4);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('joinParts', () => {
  it('returns a body read back whole as the Buffer it was cut from, and joins other parts into a copy', () => {
    const whole = Buffer.from('From: a@acme.test\r\n\r\nbody\r\n');
    const joined = joinParts(splitHead([whole]));
    expect(joined.equals(whole)).toBe(true);
    expect(joined.buffer).toBe(whole.buffer);
    const chunks = [Buffer.from('From: a@acme.test\r\n\r\nbo'), Buffer.from('dy\r\n')];
    expect(joinParts(splitHead(chunks)).equals(whole)).toBe(true);
  });
});

describe('pieceRuns', () => {
  it('cuts a message into runs of at most the piece size, the whole head in the first, keeping every byte', () => {
    fc.assert(
      fc.property(chunked, fc.integer({ min: 1, max: 16 }), ([raw, offsets], size) => {
        const message = normaliseLineEndings(raw);
        const parts = splitHead(cut(message, offsets));
        const runs = pieceRuns(parts, size);
        expect(Buffer.concat(runs.flat()).equals(message)).toBe(true);
        expect(runs[0]![0]).toBe(parts.head);
        const lengths = runs.map((run) => run.reduce((n, chunk) => n + chunk.length, 0));
        lengths.forEach((length, i) => expect(length).toBeLessThanOrEqual(i === 0 ? Math.max(size, parts.head.length) : size));
        // Every run but the last is full, so a body needs as few rows as it can.
        lengths.slice(1, -1).forEach((length) => expect(length).toBe(size));
      }),
      { numRuns: 2000 },
    );
  });
});

describe.each(['rsa', 'ed25519'] as const)('DkimSigner.signAllAsync over parts (%s)', (algorithm) => {
  const { privateKeyPem, publicKey } = generateDkimKey(algorithm);
  const keys = [{ domain: 'acme.test', selector: 'sel1', algorithm, privateKeyPem }];
  const signer = new DkimSigner();
  const verifies = async (signed: Buffer) => {
    const { results } = await dkimVerify(signed, { resolver: async () => [[`v=DKIM1; k=${algorithm}; p=${publicKey}`]] });
    return results[0]!.status.result === 'pass';
  };

  // One clock for both signatures, so that their t= tags are the same.
  beforeEach(() => void vi.useFakeTimers({ toFake: ['Date'], now: new Date('2026-11-26T07:00:00Z') }));
  afterEach(() => void vi.useRealTimers());

  it('gives the bytes sign() gives for the whole message, wherever the chunks are cut', async () => {
    await fc.assert(
      fc.asyncProperty(chunked, async ([raw, offsets]) => {
        const message = normaliseLineEndings(Buffer.concat([Buffer.from('From: a@acme.test\r\n'), raw]));
        const signed = joinParts(await signer.signAllAsync(splitHead(cut(message, offsets)), keys));
        expect(signed.toString('latin1')).toBe(signer.sign(message, keys[0]!).toString('latin1'));
        expect(await verifies(signed)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('signs a 5 MB message in 64 KB chunks as it signs it whole', async () => {
    const lines = ['plain line', 'trailing spaces   ', '\ttab  and  runs', '', 'x'.repeat(3000)];
    const body = Array.from({ length: 5_000_000 / 20 }, (_, i) => lines[i % lines.length]).join('\r\n');
    const message = Buffer.from(`From: a@acme.test\r\nSubject: big\r\n\r\n${body.slice(0, 5_000_000)}\r\n\r\n\r\n`);
    const chunks = Array.from({ length: Math.ceil(message.length / 65_536) }, (_, i) => message.subarray(i * 65_536, (i + 1) * 65_536));
    const parts = splitHead(chunks);
    const signedParts = await signer.signAllAsync(parts, keys);
    // Only the head is new: the body's chunks are the very ones given.
    expect(signedParts.rest).toHaveLength(parts.rest.length);
    signedParts.rest.forEach((chunk, i) => expect(chunk).toBe(parts.rest[i]));
    const signed = joinParts(signedParts);
    expect(signed.equals(signer.sign(message, keys[0]!))).toBe(true);
    expect(signed.subarray(signed.length - message.length).equals(message)).toBe(true);
    expect(await verifies(signed)).toBe(true);
  });
});
