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
    bounces: {
      return_path_domain: 'bounces.acme.test',
      feedback_addresses: ['fbl@acme.test'],
      inbound: { max_message_bytes: 4000, messages_per_ip_per_minute: 70 },
    },
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

async function session(tls: boolean, localAddress?: string) {
  const { client, greeting } = await RawSmtpClient.connect(relay.ports.inbound!, { implicitTls: false, localAddress });
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

  it('has its own size limit and message rate per IP', async () => {
    const client = await session(true, '127.0.0.7');
    expect((await client.command('MAIL FROM:<>')).code).toBe(250);
    expect((await client.command('RCPT TO:<fbl@acme.test>')).code).toBe(250);
    const big = await client.data(`Subject: big\r\n\r\n${'x'.repeat(70)}\r\n`.repeat(80));
    expect(`${big.code} ${big.text.split(' ')[0]}`).toBe('552 5.3.4');
    // The 552 above was the first message; 69 more are taken, the next is refused.
    const replies: number[] = [];
    for (let i = 0; i < 70; i++) {
      await client.command('RSET');
      replies.push((await client.command('MAIL FROM:<>')).code);
    }
    expect(replies.slice(0, 69).every((code) => code === 250)).toBe(true);
    const last = await client.command('RSET').then(() => client.command('MAIL FROM:<>'));
    expect(`${last.code} ${last.text.split(' ')[0]}`).toBe('450 4.7.1');
    expect(replies[69]).toBe(450);
    client.close();
  });
});
