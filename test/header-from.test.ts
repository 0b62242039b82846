/**
 * Header From and Sender, read the one strict way the sender policy then checks, through both
 * doors: over SMTP (550 5.6.0 malformed, 550 5.7.1 not allowed) and the HTTP API (raw message:
 * 422 malformed, 403 not allowed, with the same SMTP reply; the JSON `from` likewise). Each
 * value below is one that some parser could read as the allowed acme.test while another reads
 * other.test (verified, but not this credential's), or that is not one clean mailbox list.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashApiKey, newApiKey } from '../src/submission/api-keys.js';
import { apiClient } from './helpers/http.js';
import { addCredential, addSenderDomain, startTestRelay, type TestRelay } from './helpers/relay.js';
import { RawSmtpClient } from './helpers/smtp-client.js';

let relay: TestRelay;
let creds: { username: string; password: string };
let api: ReturnType<typeof apiClient>;
let smtp: RawSmtpClient;

beforeAll(async () => {
  relay = await startTestRelay();
  await addSenderDomain(relay.storage, 'acme.test');
  await addSenderDomain(relay.storage, 'other.test');
  creds = await addCredential(relay.storage, 'app', ['acme.test']);
  const key = newApiKey();
  await relay.storage.credentials.addApiKey('app', hashApiKey(key));
  api = apiClient(relay.ports.http!, key);
  ({ client: smtp } = await RawSmtpClient.connect(relay.ports.smtps!, { implicitTls: true }));
  await smtp.command('EHLO client.test');
  expect((await smtp.authPlain(creds.username, creds.password)).code).toBe(235);
});

afterAll(async () => {
  smtp?.close();
  await relay?.stop();
});

type Outcome = 'accepted' | '5.6.0' | '5.7.1';

/** Header lines (From, Sender) and what both doors must do with them. */
const CASES: [name: string, header: string[], expected: Outcome][] = [
  ['a display name that is an allowed address, the address another domain', ['From: "app@acme.test" <evil@other.test>'], '5.7.1'],
  ['the allowed address in a comment after another', ['From: evil@other.test (app@acme.test)'], '5.6.0'],
  ['another address in a comment after the allowed one', ['From: app@acme.test (evil@other.test)'], '5.6.0'],
  ['a comment inside the address', ['From: app(x)@acme.test'], '5.6.0'],
  ['two mailboxes and no Sender', ['From: <app@acme.test>, evil@other.test'], '5.6.0'],
  ['two mailboxes, one not allowed, with an allowed Sender', ['From: <app@acme.test>, evil@other.test', 'Sender: app@acme.test'], '5.7.1'],
  ['two allowed mailboxes and no Sender', ['From: app@acme.test, billing@acme.test'], '5.6.0'],
  ['group syntax', ['From: Team: app@acme.test;'], '5.6.0'],
  ['an empty group', ['From: undisclosed-senders:;'], '5.6.0'],
  ['an encoded word holding an address, outside quotes', ['From: =?utf-8?Q?app@acme.test?= <evil@other.test>'], '5.6.0'],
  ['an encoded word and no address', ['From: =?utf-8?B?ZXZpbEBvdGhlci50ZXN0?='], '5.6.0'],
  [
    'an encoded display name of an allowed address, the address another domain',
    ['From: =?utf-8?B?YXBwQGFjbWUudGVzdA==?= <evil@other.test>'],
    '5.7.1',
  ],
  ['a bare address followed by another in <>', ['From: app@acme.test <evil@other.test>'], '5.6.0'],
  ['two display-name mailboxes without a comma', ['From: App <app@acme.test> Evil <evil@other.test>'], '5.6.0'],
  ['an address with two @', ['From: app@acme.test@other.test'], '5.6.0'],
  ['a quoted local part that looks like an allowed address', ['From: "app@acme.test"@other.test'], '5.6.0'],
  ['an unclosed <', ['From: <app@acme.test'], '5.6.0'],
  ['a source route', ['From: <@acme.test:evil@other.test>'], '5.6.0'],
  ['an address literal', ['From: app@[127.0.0.1]'], '5.6.0'],
  ['an empty list member', ['From: app@acme.test,'], '5.6.0'],
  ['two From headers', ['From: app@acme.test', 'From: evil@other.test'], '5.6.0'],
  // Relay's Received goes on top, so a first line that starts with a space or tab folds into it.
  ['a From folded onto nothing (the first line starts with a space)', [' From: app@acme.test', 'To: someone@example.net'], '5.6.0'],
  ['a From folded onto nothing (the first line starts with a tab)', ['\tFrom: app@acme.test', 'To: someone@example.net'], '5.6.0'],
  ['a From after a blank first line, so in the body', ['', 'From: app@acme.test'], '5.6.0'],
  ['two Sender headers', ['From: app@acme.test', 'Sender: app@acme.test', 'Sender: evil@other.test'], '5.6.0'],
  ['a Sender with two addresses', ['From: app@acme.test', 'Sender: app@acme.test, evil@other.test'], '5.6.0'],
  ['a Sender in a comment', ['From: app@acme.test', 'Sender: evil@other.test (app@acme.test)'], '5.6.0'],
  ['a Sender of another domain', ['From: app@acme.test', 'Sender: evil@other.test'], '5.7.1'],
  // What must still pass:
  ['a display name', ['From: App <app@acme.test>'], 'accepted'],
  ['a quoted display name with a comma and an @', ['From: "Acme, Billing (app@acme.test)" <app@acme.test>'], 'accepted'],
  ['two allowed mailboxes with a Sender', ['From: app@acme.test, Billing <billing@acme.test>', 'Sender: app@acme.test'], 'accepted'],
  ['an encoded display name', ['From: =?utf-8?Q?Caf=C3=A9?= <app@acme.test>'], 'accepted'],
];

const message = (header: string[]) => `${header.join('\r\n')}\r\nSubject: header test\r\n\r\nbody\r\n`;
const codeOf = (text: string) => /^\d{3} (\d\.\d\.\d)/.exec(text)?.[1];

describe('header From and Sender over SMTP', () => {
  it.each(CASES)('%s', async (_name, header, expected) => {
    expect((await smtp.command('MAIL FROM:<app@acme.test>')).code).toBe(250);
    expect((await smtp.command('RCPT TO:<someone@example.net>')).code).toBe(250);
    const reply = await smtp.data(message(header));
    if (expected === 'accepted') expect(`${reply.code} ${reply.text}`).toMatch(/^250 /);
    else expect(`${reply.code} ${reply.text}`).toMatch(new RegExp(`^550 ${expected.replace(/\./g, '\\.')} `));
  });
});

describe('header From and Sender through the HTTP API (raw message)', () => {
  it.each(CASES)('%s', async (_name, header, expected) => {
    const res = await api('POST', '/v1/messages/raw', {
      envelope: { from: 'app@acme.test', to: ['someone@example.net'] },
      raw: message(header),
    });
    if (expected === 'accepted') return expect(res.status, JSON.stringify(res.body)).toBe(202);
    expect(res.status, JSON.stringify(res.body)).toBe(expected === '5.6.0' ? 422 : 403);
    expect(res.body.error.field).toBe('raw');
    expect(codeOf(res.body.error.smtp_reply)).toBe(expected);
  });
});

describe("the JSON message's from", () => {
  const single = CASES.filter(([, header]) => header.length === 1);
  it.each(single)('%s', async (_name, header, expected) => {
    const from = header[0]!.replace(/^From: /, '');
    const res = await api('POST', '/v1/messages', { from, to: 'someone@example.net', subject: 's', text: 't' });
    if (expected === 'accepted') return expect(res.status, JSON.stringify(res.body)).toBe(202);
    expect(res.status, JSON.stringify(res.body)).toBe(expected === '5.7.1' ? 403 : 422);
    expect(res.body.error.field).toBe('from');
  });
});
