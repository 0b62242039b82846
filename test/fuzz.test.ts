/**
 * A bounded fuzz of the submission listener (fast-check, about 30 s): after a valid AUTH, each
 * session sends random SMTP — commands in any order, random lines, overlong lines, bodies with
 * bare CR/LF, dots, NULs and 8-bit bytes — or a valid transaction with random byte mutations,
 * then hangs up at any point. The listener must never crash (it runs in this process), every
 * connection must close again, memory must stay bounded, and every message it accepted must be
 * well-formed (CRLF only, a header, one From) and carry a DKIM signature that verifies.
 */
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readHeader } from '../src/envelope/header.js';
import { startDeliveringRelay, type DeliveringRelay } from './helpers/delivering-relay.js';
import { waitFor } from './helpers/wait.js';
import { storedBody } from './helpers/relay.js';

const require = createRequire(import.meta.url);
const { dkimVerify } = require('mailauth/lib/dkim/verify') as {
  dkimVerify: (
    msg: Buffer,
    opts: { resolver: (name: string, type: string) => Promise<string[][]> },
  ) => Promise<{ results: { status: { result: string } }[] }>;
};

const FUZZ_MS = 30_000;
let env: DeliveringRelay;

beforeAll(async () => {
  env = await startDeliveringRelay({ delivery: { paused: true }, limits: { max_message_bytes: 200_000 } });
});

afterAll(async () => {
  await env?.stop();
});

/** Established TCP connections whose local port is the listener's (Linux /proc; -1 elsewhere). */
function openConnections(port: number): number {
  let table: string;
  try {
    table = readFileSync('/proc/net/tcp', 'utf8') + readFileSync('/proc/net/tcp6', 'utf8');
  } catch {
    return -1;
  }
  const local = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  return table.split('\n').filter((line) => {
    const [, localAddress, , state] = line.trim().split(/\s+/);
    return localAddress?.endsWith(local) && state === '01';
  }).length;
}

const CRLF = '\r\n';
const header = fc.constantFrom(
  'From: app@acme.test',
  'From: Other <other@elsewhere.test>',
  'Subject: fuzz',
  'To: someone@example.net',
  'Message-ID: <fuzz@acme.test>',
  'Sender: app@acme.test',
  'X-Folded: a\r\n\tb',
  'Content-Type: multipart/mixed; boundary=x',
);
const bodyLine = fc.oneof(
  fc.string({ maxLength: 80 }),
  fc.constantFrom('.', '..', '.\n', '\n.\n', '\r.\r', 'MAIL FROM:<app@acme.test>', '\0', 'x'.repeat(1200)),
  fc.uint8Array({ maxLength: 60 }).map((bytes) => Buffer.from(bytes).toString('latin1')),
);
const message = fc
  .tuple(fc.array(header, { maxLength: 6 }), fc.boolean(), fc.array(bodyLine, { maxLength: 10 }), fc.constantFrom(CRLF, '\n', '\r'))
  .map(([headers, blank, body, eol]) => headers.join(eol) + (blank ? eol + eol : eol) + body.join(eol));

const command = fc.oneof(
  fc.constantFrom(
    'EHLO fuzz.test',
    'HELO fuzz',
    'RSET',
    'NOOP',
    'QUIT',
    'VRFY app',
    'HELP',
    'STARTTLS',
    'AUTH PLAIN',
    'AUTH LOGIN',
    'BDAT 10 LAST',
    'DATA',
    '*',
  ),
  fc.constantFrom(
    'MAIL FROM:<app@acme.test>',
    'MAIL FROM:<app@acme.test> BODY=8BITMIME',
    'MAIL FROM:<app@acme.test> SMTPUTF8',
    'MAIL FROM:<>',
    'MAIL FROM:<x@other.test>',
    'MAIL FROM:app@acme.test',
  ),
  fc.constantFrom(
    'RCPT TO:<someone@example.net>',
    'RCPT TO:<jörg@example.net>',
    'RCPT TO:<a%b@example.net>',
    'RCPT TO:<@a,@b:c@example.net>',
    'RCPT TO:<>',
  ),
  message.map((m) => `DATA${CRLF}${m}${CRLF}.`),
  fc.string({ maxLength: 100 }),
  fc.constant('A'.repeat(5000)),
);
const randomSession = fc.array(command, { maxLength: 12 }).map((steps) => Buffer.from(steps.map((s) => s + CRLF).join(''), 'latin1'));

const VALID = Buffer.from(
  `MAIL FROM:<app@acme.test>${CRLF}RCPT TO:<someone@example.net>${CRLF}DATA${CRLF}From: app@acme.test${CRLF}Subject: valid${CRLF}${CRLF}Hello.${CRLF}.${CRLF}QUIT${CRLF}`,
);
const mutatedSession = fc
  .array(fc.record({ at: fc.nat(VALID.length - 1), byte: fc.integer({ min: 0, max: 255 }), insert: fc.boolean() }), { maxLength: 6 })
  .map((mutations) => {
    const bytes = [...VALID];
    for (const { at, byte, insert } of mutations) {
      if (insert) bytes.splice(at, 0, byte);
      else bytes[at] = byte;
    }
    return Buffer.from(bytes);
  });

/** One session: AUTH, the fuzz bytes (the first `cutAt` of them), then a hang-up as soon as the server goes quiet. */
function runSession(bytes: Buffer, cutAt: number | null): Promise<void> {
  return new Promise((resolve) => {
    const socket = tls.connect({ port: env.relay.ports.smtps, host: '127.0.0.1', rejectUnauthorized: false });
    let quiet: NodeJS.Timeout | undefined;
    const done = () => {
      clearTimeout(quiet);
      socket.destroy();
      resolve();
    };
    const idle = () => {
      clearTimeout(quiet);
      quiet = setTimeout(done, 60);
    };
    socket.on('error', done);
    socket.on('close', done);
    // After the greeting (smtp-server drops early talkers), everything at once.
    socket.once('data', () => {
      const auth = Buffer.from(`\0${env.creds.username}\0${env.creds.password}`).toString('base64');
      socket.write(`EHLO fuzz.test${CRLF}AUTH PLAIN ${auth}${CRLF}`);
      socket.write(cutAt === null ? bytes : bytes.subarray(0, cutAt));
      socket.on('data', idle);
      idle();
    });
  });
}

describe('fuzzed SMTP sessions', () => {
  it(
    `never crash or leak the listener, and what is accepted is well-formed and signed (${FUZZ_MS / 1000} s)`,
    { timeout: FUZZ_MS + 60_000 },
    async () => {
      const rssBefore = process.memoryUsage().rss;
      let sessions = 0;
      await fc.assert(
        // Several sessions at once, as a busy listener sees them.
        fc.asyncProperty(
          fc.array(fc.tuple(fc.oneof(randomSession, mutatedSession), fc.option(fc.nat(2000))), { minLength: 1, maxLength: 8 }),
          async (batch) => {
            sessions += batch.length;
            await Promise.all(batch.map(([bytes, cutAt]) => runSession(bytes, cutAt)));
          },
        ),
        { numRuns: 100_000, interruptAfterTimeLimit: FUZZ_MS, markInterruptAsFailure: false },
      );
      const port = env.relay.ports.smtps!;
      await waitFor(() => openConnections(port) <= 0, 'every fuzz connection closed', 20_000);
      const rssGrowth = process.memoryUsage().rss - rssBefore;

      const queued = await env.relay.storage.queue.pending();
      const resolver = async (name: string) => [[env.dkim.get(name.replace(/\.$/, '')) ?? '']];
      for (const entry of queued) {
        const body = (await storedBody(env.relay.storage.queue, entry.queueId))!;
        const text = body.toString('latin1');
        // The message itself goes into each failure, since the run that accepted it cannot be replayed.
        const shown = JSON.stringify(text.slice(0, 2000));
        expect(/[^\r]\n|\r(?!\n)/.test(text), `bare CR or LF in ${shown}`).toBe(false);
        const { fields } = readHeader(body);
        expect(
          fields.filter((f) => f.name === 'from'),
          `one From in ${shown}`,
        ).toHaveLength(1);
        expect(
          fields.some((f) => f.name === 'dkim-signature'),
          `a DKIM-Signature in ${shown}`,
        ).toBe(true);
        const { results } = await dkimVerify(body, { resolver });
        expect(results[0]?.status.result, `DKIM of ${shown}`).toBe('pass');
      }
      console.log(
        `fuzz: ${sessions} sessions, ${queued.length} messages accepted and verified, RSS growth ${(rssGrowth / 1e6).toFixed(1)} MB`,
      );
      expect(sessions).toBeGreaterThan(100);
      expect(rssGrowth).toBeLessThan(300e6);
    },
  );
});
