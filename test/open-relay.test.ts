/**
 * No open relay: the classic relay probe list against the real listeners, without AUTH (every
 * probe refused 530 5.7.0) and with a credential whose domains do not match or with address
 * tricks (refused with the exact code); nothing is queued. Also address and header injection.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prepareMessage } from '../src/submission/message.js';
import { RawSmtpClient } from './helpers/smtp-client.js';
import { PROBES } from './helpers/relay-probes.js';
import { addCredential, addSenderDomain, startTestRelay, type TestRelay } from './helpers/relay.js';

let relay: TestRelay;
let creds: { username: string; password: string };

beforeAll(async () => {
  relay = await startTestRelay();
  await addSenderDomain(relay.storage, 'acme.test');
  await addSenderDomain(relay.storage, 'other.test');
  creds = await addCredential(relay.storage, 'billing-app', ['acme.test']);
});

afterAll(async () => {
  await relay?.stop();
});

async function session(listener: 'smtps' | 'submission', localAddress?: string) {
  const { client, greeting } = await RawSmtpClient.connect(relay.ports[listener]!, { implicitTls: listener === 'smtps', localAddress });
  expect(greeting.code).toBe(220);
  await client.command('EHLO probe.test');
  if (listener === 'submission') {
    await client.starttls();
    await client.command('EHLO probe.test');
  }
  return client;
}

async function loggedIn(listener: 'smtps' | 'submission' = 'smtps') {
  const client = await session(listener);
  expect((await client.authPlain(creds.username, creds.password)).code).toBe(235);
  return client;
}

const codeOf = (reply: { code: number; text: string }) => `${reply.code} ${reply.text.split(' ')[0]}`;

describe('no open relay', () => {
  it('refuses every probe without AUTH on both listeners with 530 5.7.0, as sender and as recipient', async () => {
    const replies: string[] = [];
    for (const listener of ['smtps', 'submission'] as const) {
      await Promise.all(
        PROBES.map(async (probe) => {
          const client = await session(listener);
          replies.push(codeOf(await client.command(`MAIL FROM:<${probe}>`)));
          replies.push(codeOf(await client.command(`RCPT TO:<${probe}>`)));
          replies.push(codeOf(await client.command('DATA')));
          client.close();
        }),
      );
    }
    expect(replies).toHaveLength(PROBES.length * 2 * 3);
    expect(new Set(replies)).toEqual(new Set(['530 5.7.0']));
    expect(await relay.storage.queue.pending()).toEqual([]);
  });

  it("refuses sender probes outside the credential's domains, whatever the address trick", async () => {
    const expected: Record<string, string> = {
      'victim@other.test': '550 5.7.1',
      'billing%acme.test@other.test': '550 5.7.1',
      'acme.test!billing@other.test': '550 5.7.1',
      '@acme.test:billing@other.test': '550 5.7.1',
      '"billing@acme.test"@other.test': '501 5.1.7',
      'billing@acme.test@other.test': '501 5.1.7',
      'billing@[127.0.0.1]': '550 5.7.1',
      billing: '501 5.1.7',
      '': '550 5.7.1',
    };
    const client = await loggedIn();
    const got: Record<string, string> = {};
    for (const probe of Object.keys(expected)) got[probe] = codeOf(await client.command(`MAIL FROM:<${probe}>`));
    client.close();
    expect(got).toEqual(expected);
  });

  it('refuses recipient address tricks from an authenticated client and queues nothing', async () => {
    const expected: Record<string, string> = {
      'victim%other.test@acme.test': '550 5.7.1',
      'victim%other.test@[127.0.0.1]': '550 5.7.1',
      '"victim@other.test"@acme.test': '501 5.1.3',
      '"victim%other.test"@acme.test': '501 5.1.3',
      'other.test!victim@acme.test': '550 5.7.1',
      'other.test!victim': '501 5.1.3',
      'victim@other.test@acme.test': '501 5.1.3',
      'victim@[127.0.0.1]': '550 5.7.1',
      'victim@[IPv6:::1]': '550 5.7.1',
      'victim@localhost': '501 5.1.2',
      victim: '501 5.1.3',
      postmaster: '501 5.1.3',
      '': '501 5.1.3',
    };
    const client = await loggedIn('submission');
    expect((await client.command('MAIL FROM:<billing@acme.test>')).code).toBe(250);
    const got: Record<string, string> = {};
    for (const probe of Object.keys(expected)) got[probe] = codeOf(await client.command(`RCPT TO:<${probe}>`));
    expect(got).toEqual(expected);
    expect(codeOf(await client.command('DATA'))).toBe('503 5.5.1');
    client.close();
    expect(await relay.storage.queue.pending()).toEqual([]);
  });

  it('does not let an authenticated session vouch for its IP: a new session from it still needs AUTH', async () => {
    const authed = await loggedIn();
    const stranger = await session('smtps');
    expect(codeOf(await stranger.command('MAIL FROM:<billing@acme.test>'))).toBe('530 5.7.0');
    expect(codeOf(await stranger.command('RCPT TO:<victim@other.test>'))).toBe('530 5.7.0');
    authed.close();
    stranger.close();
    expect(await relay.storage.queue.pending()).toEqual([]);
  });
});

describe('address and header injection', () => {
  it('refuses control characters in envelope addresses with 501 5.1.7 / 5.1.3', async () => {
    const client = await loggedIn();
    expect(codeOf(await client.command('MAIL FROM:<bill\x01ing@acme.test>'))).toBe('501 5.1.7');
    expect(codeOf(await client.command('MAIL FROM:<bill\ring@acme.test>'))).toBe('501 5.1.7');
    expect((await client.command('MAIL FROM:<billing@acme.test>')).code).toBe(250);
    expect(codeOf(await client.command('RCPT TO:<vic\rBcc: x@other.test>'))).toBe('501 5.1.3');
    expect(codeOf(await client.command('RCPT TO:<vic\x0btim@other.test>'))).toBe('501 5.1.3');
    expect(codeOf(await client.command('RCPT TO:<vic\x7ftim@other.test>'))).toBe('501 5.1.3');
    client.close();
  });

  it('refuses a HELO name that could split a header', async () => {
    const { client } = await RawSmtpClient.connect(relay.ports.smtps!, { implicitTls: true });
    expect((await client.command('EHLO evil.test\rX-Injected: yes')).code).toBe(501);
    expect((await client.command('EHLO evil\x0btest')).code).toBe(501);
    client.close();
  });

  it('writes only hostname characters of the HELO name and client hostname into Received', () => {
    const prepared = prepareMessage(Buffer.from('From: billing@acme.test\r\n\r\nbody\r\n'), {
      queueId: 'Q1',
      hostname: 'relay.test',
      heloName: 'evil.test\r\nBcc: victim@other.test',
      clientAddress: '127.0.0.1',
      clientHostname: 'host (fake) \nX-Injected: 1',
      tls: true,
    });
    const lines = prepared.head.toString().split('\r\n\r\n')[0]!.split('\r\n');
    expect(lines[0]).toBe('Received: from evil.test??Bcc:?victim?other.test (host??fake???X-Injected:?1 [127.0.0.1])');
    expect(lines.filter((line) => /^(Bcc|X-Injected):/i.test(line))).toEqual([]);
  });
});
