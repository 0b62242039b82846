/**
 * /metrics as Prometheus and an outsider see it: behind http.metrics_token when that is set;
 * the `domain` label bounded to the http.metrics_domains busiest recipient domains plus
 * "other", however many domains mail goes to; relay_messages_accepted_total counting messages
 * queued, not idempotent repeats.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashApiKey, newApiKey } from '../src/submission/api-keys.js';
import { apiClient } from './helpers/http.js';
import { startMailHosts, type MailHosts } from './helpers/mail-hosts.js';
import { addCredential, addSenderDomain, startTestRelay, type TestRelay } from './helpers/relay.js';
import { waitFor } from './helpers/wait.js';

const METRICS_TOKEN = 'metrics-token-for-tests-0123456789';
const LABELS = 2;
let hosts: MailHosts;
let relay: TestRelay;
let app: ReturnType<typeof apiClient>;

beforeAll(async () => {
  hosts = await startMailHosts({ 'busy.test': {} });
  relay = await startTestRelay({
    http: { metrics_token: METRICS_TOKEN, metrics_domains: LABELS },
    limits: { max_recipients: 400 },
    delivery: hosts.delivery,
  });
  await addSenderDomain(relay.storage, 'acme.test');
  await addCredential(relay.storage, 'app', ['acme.test']);
  const key = newApiKey();
  await relay.storage.credentials.addApiKey('app', hashApiKey(key));
  app = apiClient(relay.ports.http!, key);
});

afterAll(async () => {
  await relay?.stop();
  await hosts?.stop();
});

async function scrape(): Promise<string> {
  const res = await apiClient(relay.ports.http!, METRICS_TOKEN)('GET', '/metrics');
  expect(res.status).toBe(200);
  return res.body as string;
}

/** Each `relay_delivery_outcomes_total` series: its domain label and value. */
const outcomes = (text: string) =>
  [...text.matchAll(/^relay_delivery_outcomes_total\{status="(\w+)",domain="([^"]+)"\} (\d+)$/gm)].map(([, status, domain, value]) => ({
    status,
    domain,
    value: Number(value),
  }));

/** Final outcomes (delivered or bounced) recorded so far, read from the events. */
const finished = async () =>
  (await relay.storage.events.query({ status: 'delivered', limit: 100_000 })).length +
  (await relay.storage.events.query({ status: 'bounced', limit: 100_000 })).length;

async function send(to: string[]): Promise<void> {
  const res = await app('POST', '/v1/messages', { from: 'app@acme.test', to, subject: 'metrics', text: 't' });
  expect(res.status, JSON.stringify(res.body)).toBe(202);
}

describe('/metrics', () => {
  it('needs the bearer token when http.metrics_token is set', async () => {
    const none = await apiClient(relay.ports.http!)('GET', '/metrics');
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe('Bearer');
    expect(none.body.error).toMatchObject({ status: 401, field: 'authorization' });
    expect((await apiClient(relay.ports.http!, 'wrong-token-wrong-token-wrong')('GET', '/metrics')).status).toBe(401);
    expect(await scrape()).toMatch(/^relay_queue_depth /m);
  });

  it('counts a message once in relay_messages_accepted_total, not its idempotent repeats', async () => {
    const accepted = async () => Number(/^relay_messages_accepted_total (\d+)$/m.exec(await scrape())![1]);
    const before = await accepted();
    const body = { from: 'app@acme.test', to: 'once@busy.test', subject: 'once', text: 't' };
    const first = await app('POST', '/v1/messages', body, { 'idempotency-key': 'order-77' });
    const repeat = await app('POST', '/v1/messages', body, { 'idempotency-key': 'order-77' });
    expect(repeat.body.id).toBe(first.body.id);
    expect(await accepted()).toBe(before + 1);
  });

  it('gives the busiest recipient domains their own label at a scrape; the others stay "other"', async () => {
    await waitFor(async () => (await finished()) >= 1, 'the first message delivered');
    const done = await finished();
    // By volume: busy.test 3 outcomes, also.test 2, two domains 1 each (the last three have no MX: bounced).
    await send(['a@busy.test', 'b@busy.test', 'c@busy.test', 'a@also.test', 'b@also.test', 'x@rare-a.test', 'y@rare-b.test']);
    await waitFor(async () => (await finished()) >= done + 7, 'the outcomes');
    await scrape();
    await send(['d@busy.test', 'c@also.test', 'z@rare-a.test']);
    await waitFor(async () => (await finished()) >= done + 10, 'the next outcomes');
    const labels = new Set(outcomes(await scrape()).map((o) => o.domain));
    expect([...labels].sort()).toEqual(['also.test', 'busy.test', 'other']);
  });

  it('keeps at most http.metrics_domains + 1 domain label values for mail to 300 random domains', async () => {
    const done = await finished();
    const domains = Array.from({ length: 300 }, () => `${randomBytes(6).toString('hex')}.test`);
    await send(domains.map((d) => `user@${d}`));
    // Scraping while the outcomes come in gives every scrape its chance to hand out labels.
    await waitFor(async () => {
      await scrape();
      return (await finished()) >= done + 300;
    }, 'all 300 outcomes');
    const series = outcomes(await scrape());
    const labels = new Set(series.map((o) => o.domain));
    expect(labels.size).toBeLessThanOrEqual(LABELS + 1);
    expect(labels.has('other')).toBe(true);
    expect(series.reduce((sum, o) => sum + o.value, 0)).toBe(await finished());
  });
});
