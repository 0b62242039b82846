/**
 * Webhooks against a running relay and a real HTTP endpoint on loopback: set up with the CLI,
 * events signed with HMAC-SHA256 over timestamp and body, only the subscribed statuses, and
 * the durable outbox: an endpoint outage and a relay restart delay events but lose none.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/load.js';
import { hashApiKey, newApiKey } from '../src/submission/api-keys.js';
import { createLogger } from '../src/log.js';
import { startRelay, type RunningRelay } from '../src/relay.js';
import { verifySignature } from '../src/webhooks/sign.js';
import { assertBuilt, runCli } from './helpers/cli.js';
import { startDnsServer, type TestDnsServer } from './helpers/dns.js';
import { apiClient } from './helpers/http.js';
import { addCredential, addSenderDomain, startTestRelay, type TestRelay } from './helpers/relay.js';
import { startSinks, type Sink } from './helpers/sink.js';
import { waitFor } from './helpers/wait.js';
import { startWebhookReceiver, type WebhookReceiver } from './helpers/webhook-receiver.js';

let dns: TestDnsServer;
let sinks: Sink[];
let receiver: WebhookReceiver;
let relay: TestRelay;
let restarted: RunningRelay | undefined;
let apiKey: string;
let secret: string;

const cli = (...args: string[]) => runCli(['--config', relay.configFile, ...args], { cwd: relay.dir });
const events = () =>
  receiver.received.map((r) => JSON.parse(r.body) as { id: number; type: string; recipient: string; response: string; tags: string[] });
const send = (port: number, to: string[]) =>
  apiClient(port, apiKey)('POST', '/v1/messages', { from: 'app@acme.test', to, subject: 'hook test', text: 'hello', tags: ['hooks'] });

beforeAll(async () => {
  assertBuilt();
  sinks = await startSinks([
    { host: '127.0.0.2', rcpt: (address) => (address.startsWith('unknown') ? `550 5.1.1 <${address}>: user unknown` : undefined) },
  ]);
  dns = await startDnsServer({
    'example.test': { mx: [{ priority: 10, exchange: 'mx.example.test' }] },
    'mx.example.test': { a: ['127.0.0.2'] },
  });
  receiver = await startWebhookReceiver();
  relay = await startTestRelay({
    delivery: { paused: false, dns_servers: [dns.address], smtp_port: sinks[0]!.port },
    webhooks: { retry_schedule: ['200ms'], poll_interval: '100ms', timeout: '2s' },
  });
  await addSenderDomain(relay.storage, 'acme.test');
  await addCredential(relay.storage, 'app', ['acme.test']);
  apiKey = newApiKey();
  await relay.storage.credentials.addApiKey('app', hashApiKey(apiKey));
});

afterAll(async () => {
  await relay?.stop().catch(() => undefined);
  await restarted?.stop();
  await receiver?.stop();
  await Promise.all(sinks?.map((s) => s.stop()) ?? []);
  await dns?.stop();
});

describe('webhooks', { timeout: 30_000 }, () => {
  it('are added, listed and tested with the CLI', async () => {
    const added = await cli('webhook', 'add', receiver.url, '--events', 'bounced,delivered', '--json');
    expect(added.code, added.stderr).toBe(0);
    const hook = JSON.parse(added.stdout) as { id: number; secret: string; events: string[] };
    expect(hook.events).toEqual(['bounced', 'delivered']);
    secret = hook.secret;
    const listed = JSON.parse((await cli('webhook', 'list', '--json')).stdout) as { url: string; secret?: string }[];
    expect(listed).toEqual([expect.objectContaining({ url: receiver.url, events: ['bounced', 'delivered'] })]);
    expect(listed[0]).not.toHaveProperty('secret');

    const tested = await cli('webhook', 'test', String(hook.id));
    expect(tested.code, tested.stderr).toBe(0);
    expect(tested.stdout).toMatch(/answered HTTP 200/);
    const test = receiver.received.shift()!;
    expect(verifySignature(secret, test.body, test.headers['relay-signature'] as string)).toBe(true);
    expect(JSON.parse(test.body).type).toBe('test');

    expect((await cli('webhook', 'add', receiver.url, '--events', 'opened')).stderr).toMatch(/unknown event opened/);
  });

  it('delivers signed events for the subscribed statuses only', async () => {
    expect((await send(relay.ports.http!, ['ann@example.test', 'unknown@example.test'])).status).toBe(202);
    await waitFor(() => receiver.received.length >= 2, 'two webhook events');
    expect(
      events()
        .map((e) => [e.type, e.recipient])
        .sort(),
    ).toEqual([
      ['bounced', 'unknown@example.test'],
      ['delivered', 'ann@example.test'],
    ]);
    for (const { headers, body } of receiver.received) {
      const header = headers['relay-signature'] as string;
      expect(header).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
      expect(verifySignature(secret, body, header)).toBe(true);
      expect(verifySignature('whsec_wrong', body, header)).toBe(false);
      expect(verifySignature(secret, body.replace('example', 'exampl3'), header)).toBe(false);
    }
    expect(events().find((e) => e.type === 'bounced')!.response).toMatch(/^550 5\.1\.1/);
    expect(events().map((e) => e.tags)).toEqual([['hooks'], ['hooks']]);
    // The queued event of each recipient is not subscribed: once the outbox is empty, nothing else can arrive.
    await waitFor(async () => (await relay.storage.webhooks.backlog()).count === 0, 'an empty webhook outbox');
    expect(receiver.received).toHaveLength(2);
  });

  it('keeps events through an endpoint outage and a relay restart, and delivers each once it is back', async () => {
    receiver.received.length = 0;
    receiver.status = 503;
    await send(relay.ports.http!, ['during-outage@example.test']);
    const metrics = apiClient(relay.ports.http!);
    await waitFor(async () => /^relay_webhook_backlog 1$/m.test((await metrics('GET', '/metrics')).body), 'a backlog of 1 in /metrics');
    await waitFor(() => sinks[0]!.messages.some((m) => m.rcptTo.includes('during-outage@example.test')), 'delivery');

    // Another event is recorded, then the relay stops before the endpoint comes back.
    await send(relay.ports.http!, ['before-restart@example.test']);
    await waitFor(async () => (await relay.storage.webhooks.backlog()).count === 2, 'two events in the outbox');
    await relay.stop();

    receiver.status = 200;
    restarted = await startRelay(loadConfig(relay.configFile), { logger: createLogger('silent') });
    await waitFor(() => receiver.received.length >= 2, 'the events held over the restart');
    expect(
      events()
        .map((e) => e.recipient)
        .sort(),
    ).toEqual(['before-restart@example.test', 'during-outage@example.test']);
    expect(new Set(events().map((e) => e.id)).size).toBe(2);
    await waitFor(async () => (await restarted!.storage.webhooks.backlog()).count === 0, 'an empty outbox');
  });
});
