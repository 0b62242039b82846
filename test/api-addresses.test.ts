/**
 * Addresses given to the HTTP API get the syntax checks SMTP gives them: the raw endpoint's
 * envelope and the JSON message's from, to, cc, bcc and reply_to. Control characters, CR/LF,
 * angle brackets, an empty local part, relaying tricks: 422 naming the field (`to[1]`), with
 * the reply SMTP would give, and nothing is queued for any recipient of the request.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashApiKey, newApiKey } from '../src/submission/api-keys.js';
import { apiClient } from './helpers/http.js';
import { addCredential, addSenderDomain, startTestRelay, type TestRelay } from './helpers/relay.js';

let relay: TestRelay;
let api: ReturnType<typeof apiClient>;

beforeAll(async () => {
  relay = await startTestRelay();
  await addSenderDomain(relay.storage, 'acme.test');
  await addCredential(relay.storage, 'app', ['acme.test']);
  const key = newApiKey();
  await relay.storage.credentials.addApiKey('app', hashApiKey(key));
  api = apiClient(relay.ports.http!, key);
});

afterAll(async () => {
  await relay?.stop();
});

const queued = async () => (await relay.storage.queue.pending()).length;

const BAD_ADDRESSES: [what: string, address: string][] = [
  ['CR/LF', 'bob\r\nRCPT TO:<x@example.net>@example.net'],
  ['a control character', 'bob\u0000@example.net'],
  ['angle brackets', '<bob@example.net>'],
  ['an empty local part', '@example.net'],
  ['no domain', 'bob@'],
  ['no @ at all', 'not-an-address'],
  ['two @', 'bob@evil.test@example.net'],
  ['a space', 'bob smith@example.net'],
  ['a zero-width space', 'bob\u200b@example.net'],
];

describe('POST /v1/messages/raw envelope', () => {
  const raw = 'From: app@acme.test\r\nSubject: s\r\n\r\nbody\r\n';

  it.each(BAD_ADDRESSES)('refuses a recipient with %s: 422 naming it, nothing queued', async (_what, address) => {
    const before = await queued();
    const res = await api('POST', '/v1/messages/raw', { envelope: { from: 'app@acme.test', to: ['ok@example.net', address] }, raw });
    expect(res.status, JSON.stringify(res.body)).toBe(422);
    expect(res.body.error.field).toBe('envelope.to[1]');
    expect(res.body.error.smtp_reply).toMatch(/^501 5\.1\.3 /);
    expect(await queued()).toBe(before);
  });

  it.each(BAD_ADDRESSES.filter(([what]) => what !== 'no domain'))('refuses a sender with %s: 422 naming it', async (_what, address) => {
    const before = await queued();
    const res = await api('POST', '/v1/messages/raw', {
      envelope: { from: address.replace('example.net', 'acme.test'), to: ['ok@example.net'] },
      raw,
    });
    expect(res.status, JSON.stringify(res.body)).toBe(422);
    expect(res.body.error.field).toBe('envelope.from');
    expect(res.body.error.smtp_reply).toMatch(/^501 5\.1\.7 /);
    expect(await queued()).toBe(before);
  });

  it.each([
    ['the percent hack', 'bob%evil.test@example.net', '550 5.7.1'],
    ['an IP literal', 'bob@[192.0.2.1]', '550 5.7.1'],
    ['an unqualified domain', 'bob@localhost', '501 5.1.2'],
  ])('refuses a recipient with %s as SMTP does, for the whole request', async (_what, address, reply) => {
    const before = await queued();
    const res = await api('POST', '/v1/messages/raw', { envelope: { from: 'app@acme.test', to: [address, 'ok@example.net'] }, raw });
    expect(res.status).toBe(422);
    expect(res.body.error.field).toBe('envelope.to[0]');
    expect(res.body.error.smtp_reply.startsWith(reply)).toBe(true);
    expect(await queued()).toBe(before);
  });

  it('still queues a request whose addresses are all good', async () => {
    const res = await api('POST', '/v1/messages/raw', {
      envelope: { from: 'app@acme.test', to: ['ok@example.net', 'Also.OK+tag@sub.example.net'] },
      raw,
    });
    expect(res.status, JSON.stringify(res.body)).toBe(202);
  });
});

describe('POST /v1/messages addresses', () => {
  const send = (fields: Record<string, unknown>) =>
    api('POST', '/v1/messages', { from: 'app@acme.test', to: 'ok@example.net', subject: 's', text: 't', ...fields });

  it('refuses an unparsable recipient instead of dropping it: 422 naming it, nothing queued', async () => {
    const before = await queued();
    const res = await send({ to: ['ok@example.net', 'not-an-address'] });
    expect(res.status, JSON.stringify(res.body)).toBe(422);
    expect(res.body.error.field).toBe('to[1]');
    expect(await queued()).toBe(before);
  });

  it.each(BAD_ADDRESSES.filter(([what]) => !['angle brackets', 'a space'].includes(what)))(
    'refuses %s in to, cc, bcc, reply_to and from, naming the field',
    async (_what, address) => {
      const before = await queued();
      for (const [fields, field] of [
        [{ to: ['ok@example.net', address] }, 'to[1]'],
        [{ cc: address }, 'cc'],
        [{ bcc: ['ok@example.net', 'fine@example.net', address] }, 'bcc[2]'],
        [{ reply_to: ['help@acme.test', address] }, 'reply_to[1]'],
        [{ from: address.replace('example.net', 'acme.test') }, 'from'],
      ] as const) {
        const res = await send(fields);
        expect([res.status, res.body.error?.field], JSON.stringify({ fields, body: res.body })).toEqual([422, field]);
      }
      expect(await queued()).toBe(before);
    },
  );

  it('refuses an address hidden behind a display name or in a list the same way', async () => {
    for (const [fields, field] of [
      [{ to: ['ok@example.net', 'Bob <bob\u0000@example.net>'] }, 'to[1]'],
      [{ cc: 'ok@example.net, @example.net' }, 'cc'],
      [{ to: ['ok@example.net', 'Bob <bob%evil.test@example.net>'] }, 'to[1]'],
      [{ from: 'App <app@acme.test>, Other <other@acme.test>' }, 'from'],
    ] as const) {
      const res = await send(fields);
      expect([res.status, res.body.error?.field], JSON.stringify({ fields, body: res.body })).toEqual([422, field]);
    }
  });

  it('queues display names and lists of good addresses', async () => {
    const res = await send({
      from: 'App <app@acme.test>',
      to: ['Ann <ann@example.net>', 'bob@example.net'],
      cc: 'Carl <carl@example.net>, dee@example.net',
      reply_to: 'help@acme.test',
    });
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    expect(res.body.recipients.map((r: { address: string }) => r.address)).toEqual([
      'ann@example.net',
      'bob@example.net',
      'carl@example.net',
      'dee@example.net',
    ]);
  });
});
