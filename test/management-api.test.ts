/**
 * The management operations over HTTP against a running relay, each with the least role that
 * may run it: domains (add → DNS records, verify against an in-process DNS server, remove),
 * credentials (add → password once, API keys, limits, revoke), templates, webhooks and
 * suppressions. They run the same stage functions as the CLI: what one door does, the other sees.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addOperator } from '../src/operators/manage.js';
import { verifyPassword } from '../src/submission/password.js';
import { assertBuilt, runCli } from './helpers/cli.js';
import { startDnsServer, type TestDnsServer } from './helpers/dns.js';
import { apiClient } from './helpers/http.js';
import { startTestRelay, type TestRelay } from './helpers/relay.js';

let dns: TestDnsServer;
let relay: TestRelay;
let senderAdmin: ReturnType<typeof apiClient>;
let editor: ReturnType<typeof apiClient>;
let admin: ReturnType<typeof apiClient>;
let viewer: ReturnType<typeof apiClient>;
const cli = (...args: string[]) => runCli(['--config', relay.configFile, ...args], { cwd: relay.dir });

beforeAll(async () => {
  assertBuilt();
  dns = await startDnsServer();
  relay = await startTestRelay({ delivery: { dns_servers: [dns.address], dns_timeout: '2s' } });
  const client = async (role: 'admin' | 'sender-admin' | 'template-editor' | 'viewer') =>
    apiClient(relay.ports.http!, (await addOperator(relay.storage.operators, { name: role, role })).token);
  [senderAdmin, editor, admin, viewer] = await Promise.all([
    client('sender-admin'),
    client('template-editor'),
    client('admin'),
    client('viewer'),
  ]);
});

afterAll(async () => {
  await relay?.stop();
  await dns?.stop();
});

describe('domains over HTTP', { timeout: 30_000 }, () => {
  it('adds a domain and returns its DNS records; the CLI sees the same domain', async () => {
    const added = await senderAdmin('POST', '/v1/domains', { domain: 'Acme.TEST', selector: 's1', algorithm: 'ed25519' });
    expect(added.status, JSON.stringify(added.body)).toBe(201);
    expect(added.body).toMatchObject({ domain: 'acme.test', selector: 's1' });
    expect(added.body.records.map((r: { purpose: string }) => r.purpose)).toEqual(['verification', 'dkim', 'spf', 'dmarc']);
    expect(JSON.stringify(added.body)).not.toContain('PRIVATE KEY');

    const records = await cli('domain', 'records', 'acme.test', '--json');
    expect(records.code, records.stderr).toBe(0);
    expect(JSON.parse(records.stdout).records).toEqual(added.body.records);
    expect((await viewer('GET', '/v1/domains/acme.test/records')).body.records).toEqual(added.body.records);
  });

  it('names the field of a refused request', async () => {
    const taken = await senderAdmin('POST', '/v1/domains', { domain: 'acme.test' });
    expect(taken.status).toBe(409);
    expect(taken.body.error).toMatchObject({ field: 'domain', message: expect.stringContaining('already exists') });
    const bad = await senderAdmin('POST', '/v1/domains', { domain: 'not a domain' });
    expect(bad.status).toBe(422);
    expect(bad.body.error.field).toBe('domain');
    const selector = await senderAdmin('POST', '/v1/domains', { domain: 'b.test', selector: 'bad selector' });
    expect(selector.body.error).toMatchObject({ status: 422, field: 'selector' });
    const algorithm = await senderAdmin('POST', '/v1/domains', { domain: 'b.test', algorithm: 'dsa' });
    expect(algorithm.body.error).toMatchObject({ status: 422, field: 'algorithm' });
  });

  it('verifies a domain once its ownership record is published', async () => {
    const before = await senderAdmin('POST', '/v1/domains/acme.test/verify');
    expect(before.status).toBe(200);
    expect(before.body).toMatchObject({ domain: 'acme.test', verified: false, checks: { verification: { status: 'missing' } } });
    const { records } = (await viewer('GET', '/v1/domains/acme.test/records')).body;
    const ownership = records.find((r: { purpose: string }) => r.purpose === 'verification');
    dns.setZone(ownership.name, { txt: [ownership.value] });
    const after = await senderAdmin('POST', '/v1/domains/acme.test/verify');
    expect(after.body).toMatchObject({ verified: true, checks: { verification: { status: 'found' } } });
    expect((await viewer('GET', '/v1/domains')).body.domains[0]).toMatchObject({ name: 'acme.test', verified: true });
    expect((await senderAdmin('POST', '/v1/domains/nope.test/verify')).body.error).toMatchObject({ status: 404, field: 'domain' });
  });
});

describe('credentials over HTTP', { timeout: 30_000 }, () => {
  it('creates a credential with its password and API key shown once, and the key sends', async () => {
    const created = await senderAdmin('POST', '/v1/credentials', { name: 'shop', domains: ['acme.test'], api_key: true, daily: 100 });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(created.body).toMatchObject({ name: 'shop', username: 'shop', domains: ['acme.test'], limits: { daily: 100, rate: null } });
    expect(created.body.password).toMatch(/^[A-Za-z0-9_-]{24}$/);
    const stored = await relay.storage.credentials.get('shop');
    expect(await verifyPassword(created.body.password, stored!.passwordHash)).toBe(true);
    const app = apiClient(relay.ports.http!, created.body.api_key);
    expect((await app('GET', '/v1/me')).body).toMatchObject({ name: 'shop', role: 'app' });
    const sent = await app('POST', '/v1/messages', { from: 'shop@acme.test', to: 'a@example.test', subject: 's', text: 't' });
    expect(sent.status, JSON.stringify(sent.body)).toBe(202);

    const another = await senderAdmin('POST', '/v1/credentials/shop/api-keys');
    expect(another.status).toBe(201);
    expect(another.body.api_key).toMatch(/^rk_/);
    expect(another.body.api_key).not.toBe(created.body.api_key);
  });

  it('names the field of a refused credential', async () => {
    expect((await senderAdmin('POST', '/v1/credentials', { name: 'shop', domains: ['acme.test'] })).body.error).toMatchObject({
      status: 409,
      field: 'name',
    });
    expect((await senderAdmin('POST', '/v1/credentials', { name: 'x', domains: ['ghost.test'] })).body.error).toMatchObject({
      status: 404,
      field: 'domains',
    });
    expect((await senderAdmin('POST', '/v1/credentials', { name: 'bad name', domains: ['acme.test'] })).body.error).toMatchObject({
      status: 422,
      field: 'name',
    });
    expect((await senderAdmin('POST', '/v1/credentials', { name: 'x', domains: [] })).body.error).toMatchObject({
      status: 422,
      field: 'domains',
    });
    expect((await senderAdmin('PATCH', '/v1/credentials/shop', { rate: 'fast' })).body.error).toMatchObject({ status: 422, field: 'rate' });
    expect((await senderAdmin('PATCH', '/v1/credentials/ghost', { daily: 5 })).body.error).toMatchObject({ status: 404, field: 'name' });
  });

  it('changes limits, lists them with usage, and revokes', async () => {
    const updated = await senderAdmin('PATCH', '/v1/credentials/shop', { rate: '5/s', daily: null, monthly: 1000 });
    expect(updated.body).toEqual({ name: 'shop', limits: { rate: '5/s', daily: null, monthly: 1000 } });
    const listed = (await viewer('GET', '/v1/credentials')).body.credentials.find((c: { name: string }) => c.name === 'shop');
    expect(listed).toMatchObject({ limits: { rate: '5/s', monthly: 1000 }, usage: { today: 1 }, revoked_at: null });
    expect(JSON.stringify(listed)).not.toMatch(/scrypt|password/);

    expect((await senderAdmin('DELETE', '/v1/credentials/shop')).status).toBe(204);
    expect((await senderAdmin('DELETE', '/v1/credentials/shop')).status).toBe(409);
    const list = await cli('credential', 'list', '--json');
    expect(JSON.parse(list.stdout)[0]).toMatchObject({ name: 'shop', revoked: expect.stringMatching(/^\d{4}-/) });
  });
});

describe('templates, webhooks and suppressions over HTTP', { timeout: 30_000 }, () => {
  it('adds template versions, reads and removes them', async () => {
    expect((await editor('PUT', '/v1/templates/welcome', { subject: 'Hi {{name}}', text: 'Hello {{name}}' })).body).toEqual({
      name: 'welcome',
      version: 1,
    });
    expect((await editor('PUT', '/v1/templates/welcome', { subject: 'Hi {{name}}', html: '<p>{{name}}</p>' })).body.version).toBe(2);
    expect((await viewer('GET', '/v1/templates/welcome?version=1')).body).toMatchObject({ version: 1, text: 'Hello {{name}}', html: null });
    expect((await viewer('GET', '/v1/templates')).body.templates).toEqual([expect.objectContaining({ name: 'welcome', version: 2 })]);
    const broken = await editor('PUT', '/v1/templates/welcome', { subject: 'Hi', text: '{{#open}}' });
    expect(broken.body.error).toMatchObject({ status: 422, field: 'text', message: expect.stringContaining('not a valid template') });
    expect((await editor('PUT', '/v1/templates/welcome', { subject: 'Hi' })).body.error).toMatchObject({ status: 422, field: 'text' });
    expect((await editor('PUT', '/v1/templates/bad%20name', { subject: 'Hi', text: 'x' })).body.error).toMatchObject({ field: 'name' });

    const listed = await cli('template', 'list', '--json');
    expect(JSON.parse(listed.stdout)).toEqual([expect.objectContaining({ name: 'welcome', version: 2 })]);
    expect((await editor('DELETE', '/v1/templates/welcome')).status).toBe(204);
    expect((await editor('DELETE', '/v1/templates/welcome')).body.error).toMatchObject({ status: 404, field: 'name' });
    expect((await viewer('GET', '/v1/templates')).body.templates).toEqual([]);
  });

  it('adds a webhook with its secret once, lists it with the URL password masked, and removes it', async () => {
    const added = await admin('POST', '/v1/webhooks', {
      url: 'https://user:pw@hooks.example.test/relay',
      events: ['bounced', 'delivered'],
    });
    expect(added.status, JSON.stringify(added.body)).toBe(201);
    expect(added.body).toMatchObject({ url: 'https://user:***@hooks.example.test/relay', events: ['bounced', 'delivered'] });
    expect(added.body.secret).toEqual(expect.any(String));
    const listed = (await viewer('GET', '/v1/webhooks')).body.webhooks;
    expect(listed).toEqual([
      {
        id: added.body.id,
        url: 'https://user:***@hooks.example.test/relay',
        events: ['bounced', 'delivered'],
        created_at: expect.any(String),
      },
    ]);
    expect((await admin('POST', '/v1/webhooks', { url: 'https://x.test/', events: ['opened'] })).body.error).toMatchObject({
      status: 422,
      field: 'events',
    });
    expect((await admin('POST', '/v1/webhooks', { url: 'ftp://x.test/' })).body.error).toMatchObject({ status: 422, field: 'url' });
    expect((await admin('DELETE', `/v1/webhooks/${added.body.id}`)).status).toBe(204);
    expect((await admin('DELETE', `/v1/webhooks/${added.body.id}`)).body.error).toMatchObject({ status: 404, field: 'id' });
  });

  it('suppresses for every credential or one, refusing an unknown credential', async () => {
    const added = await senderAdmin('POST', '/v1/suppressions', { address: 'Stop@Example.test', reason: 'asked' });
    expect(added.status).toBe(201);
    expect(added.body).toMatchObject({ address: 'stop@example.test', credential: null });
    expect((await senderAdmin('POST', '/v1/suppressions', { address: 'x@example.test', credential: 'ghost' })).body.error).toMatchObject({
      status: 404,
      field: 'credential',
    });
    const listed = await cli('suppression', 'list', '--json');
    expect(JSON.parse(listed.stdout)).toEqual([expect.objectContaining({ address: 'stop@example.test', credential: null })]);
    expect((await senderAdmin('DELETE', '/v1/suppressions/stop@example.test')).status).toBe(204);
  });
});
