/**
 * The inbound listener (port 25) is never an open relay: the classic probe list, and the same
 * tricks dressed as the return-path domain's own addresses, are all refused at RCPT, so no DATA
 * follows; only the token and feedback addresses are taken.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROBES } from './helpers/relay-probes.js';
import { addSenderDomain, startTestRelay, type TestRelay } from './helpers/relay.js';
import { RawSmtpClient } from './helpers/smtp-client.js';

let relay: TestRelay;

beforeAll(async () => {
  relay = await startTestRelay({
    listeners: [{ name: 'inbound', host: '127.0.0.1', port: 0, tls: 'starttls', kind: 'inbound' }],
    bounces: { return_path_domain: 'bounces.acme.test', feedback_addresses: ['fbl@acme.test'] },
  });
  await addSenderDomain(relay.storage, 'acme.test');
});

afterAll(async () => {
  await relay?.stop();
});

/** The probes again, built on the addresses the listener does take. */
const OWN_LOOKALIKES = [
  'b+x%other.test@bounces.acme.test',
  '"b+x@other.test"@bounces.acme.test',
  'other.test!b+x@bounces.acme.test',
  '@bounces.acme.test:victim@other.test',
  'b+x@bounces.acme.test@other.test',
  'b+x@other.test',
  'b+x@[127.0.0.1]',
  'b+x@bounces.acme.test.other.test',
  'fbl@other.test',
  'fbl%other.test@acme.test',
  'postmaster@bounces.acme.test',
  'b@bounces.acme.test',
];

async function session(tls: boolean) {
  const { client, greeting } = await RawSmtpClient.connect(relay.ports.inbound!, { implicitTls: false });
  expect(greeting.code).toBe(220);
  await client.command('EHLO probe.test');
  if (tls) {
    expect((await client.starttls()).code).toBe(220);
    await client.command('EHLO probe.test');
  }
  return client;
}

describe('no open relay on the inbound listener', () => {
  it('refuses every probe as a recipient, with and without STARTTLS, so no DATA follows', async () => {
    const replies: { probe: string; rcpt: string; data: number }[] = [];
    for (const tls of [false, true]) {
      for (const probe of [...PROBES, ...OWN_LOOKALIKES]) {
        const client = await session(tls);
        expect((await client.command('MAIL FROM:<probe@example.org>')).code).toBe(250);
        const rcpt = await client.command(`RCPT TO:<${probe}>`);
        const data = await client.command('DATA');
        replies.push({ probe, rcpt: `${rcpt.code} ${rcpt.text.split(' ')[0]}`, data: data.code });
        client.close();
      }
    }
    // smtp-server refuses an address with two @ as a syntax error (501 5.1.3) before the listener sees it.
    const withDomain = replies.filter((r) => r.probe.includes('@'));
    expect(withDomain.filter((r) => !['550 5.7.1', '501 5.1.3'].includes(r.rcpt))).toEqual([]);
    expect(replies.filter((r) => !/^5\d\d /.test(r.rcpt) || r.data < 500)).toEqual([]);
  });

  it('takes its own addresses, in any case', async () => {
    const client = await session(true);
    expect((await client.command('MAIL FROM:<>')).code).toBe(250);
    for (const rcpt of ['B+ABC-1-AAAAAAAAAAAAAAAA@Bounces.Acme.Test', 'u+abc@bounces.acme.test', 'FBL@acme.test']) {
      expect((await client.command(`RCPT TO:<${rcpt}>`)).code).toBe(250);
    }
    client.close();
  });
});
