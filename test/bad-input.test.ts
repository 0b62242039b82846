/**
 * SMTP smuggling and bad input, with a raw client: only CRLF.CRLF ends DATA (a "second message"
 * hidden behind a bare-LF or bare-CR dot stays inside the first message, normalised), what
 * leaves Relay has no bare CR or LF, and each kind of malformed message gets a clear refusal or
 * is relayed intact, the session still answering afterwards.
 */
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { normaliseLineEndings } from '../src/submission/message.js';
import { startDeliveringRelay, type DeliveringRelay } from './helpers/delivering-relay.js';
import type { RawSmtpClient } from './helpers/smtp-client.js';
import { waitFor } from './helpers/wait.js';

let env: DeliveringRelay;

beforeAll(async () => {
  env = await startDeliveringRelay({ limits: { max_message_bytes: 16_000_000 } });
});

afterAll(async () => {
  await env?.stop();
});

const BARE = /[^\r]\n|\r(?!\n)/;

async function transaction(client: RawSmtpClient, body: string | Buffer) {
  expect((await client.command('MAIL FROM:<app@acme.test>')).code).toBe(250);
  expect((await client.command('RCPT TO:<someone@example.net>')).code).toBe(250);
  return client.data(body);
}

/** The session still answers, with nothing left over from what was sent before. */
async function stillAnswers(client: RawSmtpClient) {
  const noop = await client.command('NOOP');
  expect(noop.code).toBe(250);
  expect(noop.text).toMatch(/^2\.0\.0 /);
}

const arrived = (token: string) =>
  waitFor(() => {
    const messages = env.sink.messages.filter((m) => m.raw.includes(token));
    return messages.length > 0 ? messages : undefined;
  }, `${token} at the sink`);

describe('SMTP smuggling', { timeout: 30_000 }, () => {
  const variants: [string, string][] = [
    ['bare LF dot bare LF', '\n.\n'],
    ['bare LF dot CRLF', '\n.\r\n'],
    ['bare CR dot CRLF', '\r.\r\n'],
    ['CRLF dot bare LF', '\r\n.\n'],
    ['bare CR dot bare CR', '\r.\r'],
  ];
  for (const [name, terminator] of variants) {
    it(`keeps a message smuggled after ${name} inside the first message`, async () => {
      const token = `smuggle-${name.replace(/ /g, '-')}`;
      const client = await env.session();
      const smuggled =
        `From: app@acme.test\r\nSubject: ${token}\r\n\r\nfirst body${terminator}` +
        `MAIL FROM:<app@acme.test>\r\nRCPT TO:<victim@example.net>\r\nDATA\r\n` +
        `From: app@acme.test\r\nSubject: ${token}-second\r\n\r\nsmuggled body`;
      const reply = await transaction(client, smuggled);
      expect(reply.code).toBe(250);
      // Exactly one reply to DATA: the smuggled commands were never read as commands.
      await stillAnswers(client);
      client.close();

      const [message, ...others] = await arrived(token);
      expect(others).toEqual([]);
      expect(message!.rcptTo).toEqual(['someone@example.net']);
      const text = message!.raw.toString('latin1');
      expect(text).toContain('RCPT TO:<victim@example.net>');
      expect(text).toContain(`Subject: ${token}-second`);
      // Outbound, no bare CR or LF: the ambiguous terminator went out as plain CRLF lines.
      expect(BARE.test(text)).toBe(false);
      expect(env.sink.messages.some((m) => m.rcptTo.includes('victim@example.net'))).toBe(false);
    });
  }
});

describe('bad input', { timeout: 60_000 }, () => {
  /** Submits, expects 250, and checks the sink got the (line-ending normalised) bytes unchanged after Relay's added headers. */
  async function relayedIntact(token: string, message: Buffer, options: { added?: string } = {}): Promise<Buffer> {
    const client = await env.session();
    const reply = await transaction(client, message);
    expect(reply.code).toBe(250);
    await stillAnswers(client);
    client.close();
    const [delivered] = await arrived(token);
    // RawSmtpClient.data() sends CRLF.CRLF after the bytes, so the message itself ends with that CRLF.
    const sent = normaliseLineEndings(Buffer.concat([message, Buffer.from('\r\n' + (options.added ?? ''))]));
    expect(delivered!.raw.subarray(delivered!.raw.length - sent.length).equals(sent)).toBe(true);
    expect(BARE.test(delivered!.raw.toString('latin1'))).toBe(false);
    return delivered!.raw;
  }

  it('relays malformed MIME intact (Relay does not parse MIME)', async () => {
    const token = 'bad-mime';
    await relayedIntact(
      token,
      Buffer.from(
        `From: app@acme.test\r\nSubject: ${token}\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\r\n` +
          `Content-Transfer-Encoding: base64!!\r\n\r\n--nothing\r\nContent-Type: text/plain\r\n\r\n=?broken?= part never closed\r\n`,
      ),
    );
  });

  it('refuses a message with no header at all with 550 5.6.0, and the session goes on', async () => {
    const client = await env.session();
    const reply = await transaction(client, 'just a body line, no header\r\nand another\r\n');
    expect([reply.code, reply.text]).toEqual([550, '5.6.0 message has no From header']);
    await stillAnswers(client);
    client.close();
  });

  it('relays a message with a 10 MB header block intact', async () => {
    const token = 'huge-header';
    const pad = Array.from({ length: 10_500 }, (_, i) => `X-Pad-${i}: ${'p'.repeat(990)}\r\n`).join('');
    await relayedIntact(token, Buffer.from(`From: app@acme.test\r\nSubject: ${token}\r\n${pad}\r\nbody\r\n`));
  });

  it('relays lines over 998 octets intact', async () => {
    const token = 'long-lines';
    await relayedIntact(
      token,
      Buffer.from(`From: app@acme.test\r\nSubject: ${token}\r\nX-Long: ${'h'.repeat(2000)}\r\n\r\n${'b'.repeat(5000)}\r\nend\r\n`),
    );
  });

  it('relays NUL bytes intact', async () => {
    const token = 'nul-bytes';
    await relayedIntact(token, Buffer.from(`From: app@acme.test\r\nSubject: ${token}\r\n\r\nbefore\0after\r\n\0\0\r\n`, 'latin1'));
  });

  it('relays 8-bit data sent without BODY=8BITMIME intact', async () => {
    const token = 'eight-bit';
    await relayedIntact(
      token,
      Buffer.concat([
        Buffer.from(`From: app@acme.test\r\nSubject: ${token}\r\n\r\n`),
        Buffer.from('Grüße, naïve café\r\n'),
        Buffer.from([0xe9, 0xff, 0x80, 0x0d, 0x0a]),
      ]),
    );
  });

  it('relays a message that is only a header block intact, with the empty line that ends a header', async () => {
    const token = 'only-headers';
    await relayedIntact(token, Buffer.from(`From: app@acme.test\r\nSubject: ${token}\r\nX-Note: no blank line, no body`), {
      added: '\r\n',
    });
  });

  it('relays a 5 MB message with bare CR and LF throughout intact, its signature valid', async () => {
    const token = 'big-bare';
    // Bare line ends every few bytes, so that some fall on the boundaries of the chunks DATA arrives in.
    const lines = ['plain\n', 'two  spaces \r', '\ttab\r\n', '\n', '.dot\r', 'x'.repeat(70) + '\n'];
    const body = Array.from({ length: 300_000 }, (_, i) => lines[i % lines.length]).join('');
    const delivered = await relayedIntact(token, Buffer.from(`From: app@acme.test\r\nSubject: ${token}\r\n\r\n${body}`));
    expect(delivered.length).toBeGreaterThan(5_000_000);
    const { results } = await dkimVerify(delivered, { resolver: async (name: string) => [[env.dkim.get(name.replace(/\.$/, '')) ?? '']] });
    expect(results.map((result) => result.status.result)).toEqual(['pass']);
  });
});
