/**
 * Traffic shaping end to end, with a real relay delivering to loopback sinks through the test
 * DNS server: a destination that answers 421 4.7.0 after some messages is cut and suspended,
 * then restored by the deliveries that follow; two recipient domains hosted on one MX share
 * one budget; `GET /v1/shaping`, the metrics, the log and `relay shaping status` show it.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { afterEach, describe, expect, it } from 'vitest';
import { hashApiKey, newApiKey } from '../src/submission/api-keys.js';
import { loadConfig } from '../src/config/load.js';
import { assertBuilt, runCli } from './helpers/cli.js';
import { startDnsServer, type TestDnsServer, type Zone } from './helpers/dns.js';
import { eventsOf } from './helpers/events.js';
import { apiClient } from './helpers/http.js';
import { addCredential, addSenderDomain, startTestRelay, writeTestConfig, type TestRelay } from './helpers/relay.js';
import { startSink, startSinks, type ReceivedMessage, type Sink } from './helpers/sink.js';
import { waitFor } from './helpers/wait.js';

const ADMIN_TOKEN = 'shaping-admin-token-0123456789';

let cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const stop of cleanup.reverse()) await stop();
  cleanup = [];
});

/** A relay whose shaping rules are only `rules`, delivering `domains` to one sink at mx.shared.test. */
async function setup(
  rules: Record<string, unknown>,
  domains: string[],
  sinkOptions: Parameters<typeof startSink>[0] = {},
  logLines?: string[],
  /** Sinks of its own (on one port) and the zone that leads to them, instead of the one sink. */
  own?: { sinks: Sink[]; zone: Zone },
): Promise<{ relay: TestRelay; sink: Sink; dns: TestDnsServer; send: (to: string) => Promise<void>; api: ReturnType<typeof apiClient> }> {
  const sink = own?.sinks[0] ?? (await startSink({ ...sinkOptions, host: '127.0.0.2' }));
  cleanup.push(...(own?.sinks ?? [sink]).map((s) => () => s.stop()));
  const dns = await startDnsServer(
    own?.zone ?? {
      ...Object.fromEntries(domains.map((d) => [d, { mx: [{ exchange: 'mx.shared.test', priority: 10 }] }])),
      'mx.shared.test': { a: ['127.0.0.2'] },
    },
  );
  cleanup.push(() => dns.stop());
  const dir = path.dirname(writeTestConfig());
  writeFileSync(path.join(dir, 'shaping.yaml'), YAML.stringify(rules));
  const relay = await startTestRelay(
    {
      http: { admin_token: ADMIN_TOKEN },
      delivery: { paused: false, dns_servers: [dns.address], smtp_port: sink.port },
      shaping: { rules: path.join(dir, 'shaping.yaml'), packaged_rules: false },
      ...(logLines && { log: { level: 'info' } }),
    },
    logLines ? { destination: { write: (line: string) => void logLines.push(line) } } : {},
  );
  cleanup.push(() => relay.stop());
  await addSenderDomain(relay.storage, 'acme.test');
  await addCredential(relay.storage, 'shop', ['acme.test']);
  const key = newApiKey();
  await relay.storage.credentials.addApiKey('shop', hashApiKey(key));
  const app = apiClient(relay.ports.http!, key);
  const send = async (to: string) => {
    const response = await app('POST', '/v1/messages', { from: 'shop@acme.test', to, subject: 'Hello', text: 'Hi' });
    expect(response.status).toBe(202);
  };
  return { relay, sink, dns, send, api: apiClient(relay.ports.http!, ADMIN_TOKEN) };
}

describe('adaptive throttling', { timeout: 60_000 }, () => {
  it('a destination answering 421 4.7.0 after 3 messages is slowed down and suspended, then restored by the deliveries that follow', async () => {
    let refusedAt: number | undefined;
    const logLines: string[] = [];
    const { relay, sink, send, api } = await setup(
      {
        adaptive: { cut: 0.5, floor: 0.1, suspend: '1s', restore_after: 3, restore_step: 2 },
        slowdown: [{ code: 421 }],
        destinations: [{ name: 'throttled', mx_suffixes: ['shared.test'], max_connections: 1, messages_per_second: 4 }],
      },
      ['throttled.test'],
      {
        // The fourth message is refused as Gmail does when we come too fast; everything else is taken.
        data: (message: ReceivedMessage) => {
          if (sink.messages.length !== 3 || refusedAt !== undefined) return undefined;
          refusedAt = message.dataStartedAt;
          return '421 4.7.0 Try again later, closing connection.';
        },
      },
      logLines,
    );
    const recipients = Array.from({ length: 9 }, (_, i) => `user${i}@throttled.test`);
    for (const to of recipients) await send(to);

    const slowed = await waitFor(async () => {
      const { body } = await api('GET', '/v1/shaping');
      return body.changes.length > 0 && body;
    }, 'the slow-down');
    const cut = slowed.changes[0];
    expect(cut).toMatchObject({ destination: 'throttled', reason: 'slowdown', from_level: 1, to_level: 0.5 });
    expect(cut.reply).toMatch(/^421 4\.7\.0 Try again later/);
    expect(Date.parse(cut.suspended_until) - Date.parse(cut.at)).toBe(1000);
    const throttled = slowed.destinations[0];
    expect(throttled.configured).toEqual({
      max_connections: 1,
      messages_per_second: 4,
      messages_per_minute: null,
      messages_per_hour: null,
    });
    if (throttled.current.level === 0.5) expect(throttled.current.messages_per_second).toBe(2);

    await waitFor(() => sink.messages.length === recipients.length, 'every message at the sink');
    const { body: after } = await api('GET', '/v1/shaping');
    expect(
      after.changes.map((c: { reason: string; from_level: number; to_level: number }) => `${c.reason} ${c.from_level}->${c.to_level}`),
    ).toEqual(['slowdown 1->0.5', 'restore 0.5->1']);
    expect(after.destinations[0].current).toMatchObject({ level: 1, max_connections: 1, messages_per_second: 4, slowdowns: 1 });

    // Nothing reached the sink while the destination was suspended, and three messages came after it before the restore.
    const suspendedFrom = Date.parse(cut.at);
    const suspendedUntil = Date.parse(cut.suspended_until);
    expect(refusedAt).toBeLessThanOrEqual(suspendedFrom);
    expect(sink.messages.filter((m) => m.dataStartedAt > refusedAt! && m.dataStartedAt < suspendedUntil)).toEqual([]);
    const restoredAt = Date.parse(after.changes[1].at);
    expect(sink.messages.filter((m) => m.dataStartedAt >= suspendedUntil && m.acceptedAt <= restoredAt)).toHaveLength(3);

    // The recipients waiting when the cut came were deferred to the suspension's end, saying why.
    const deferred = await eventsOf(relay.storage, { status: 'deferred' });
    expect(deferred.map((e) => e.response)).toContain('421 4.7.0 Try again later, closing connection.');
    expect(deferred.some((e) => /^4\.7\.0 delivery to throttled suspended by traffic shaping until /.test(e.response ?? ''))).toBe(true);

    const metrics = await (await fetch(`http://127.0.0.1:${relay.ports.http}/metrics`)).text();
    expect(metrics).toContain('relay_shaping_changes_total{destination="throttled",reason="slowdown"} 1');
    expect(metrics).toContain('relay_shaping_changes_total{destination="throttled",reason="restore"} 1');
    expect(metrics).toContain('relay_shaping_level{destination="throttled"} 1');
    expect(metrics).toContain('relay_shaping_suspended{destination="throttled"} 0');

    const logged = logLines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((l) => String(l.msg).startsWith('shaping:'));
    expect(logged).toMatchObject([
      { level: 40, destination: 'throttled', budgetLevel: 0.5, previousBudgetLevel: 1, maxConnections: 1, messagesPerSecond: 2 },
      { level: 30, destination: 'throttled', budgetLevel: 1, previousBudgetLevel: 0.5, maxConnections: 1, messagesPerSecond: 4 },
    ]);
  });
});

describe('shared budgets', { timeout: 60_000 }, () => {
  const slowSink = { beforeReply: () => new Promise<void>((resolve) => setTimeout(resolve, 30)) };
  const recipients = ['one.test', 'two.test'].flatMap((d) => Array.from({ length: 6 }, (_, i) => `user${i}@${d}`));

  it('two recipient domains on one MX host share its destination: with max_connections 1 the MX never sees two connections', async () => {
    const { sink, send, api } = await setup(
      { destinations: [{ name: 'shared', mx_suffixes: ['shared.test'], max_connections: 1 }] },
      ['one.test', 'two.test'],
      slowSink,
    );
    await Promise.all(recipients.map(send));
    await waitFor(() => sink.messages.length === recipients.length, 'every message at the sink');
    expect(sink.peakOpen).toBe(1);
    const { body } = await api('GET', '/v1/shaping');
    expect(body.destinations).toMatchObject([{ name: 'shared', current: { in_flight: 0, level: 1 } }]);
  });

  it('a provider destination keeps its limit across its MX hosts: an idle connection to one is closed before one to another opens', async () => {
    // Each sink notes, at MAIL FROM, whether the other still has a connection open.
    const overlaps: string[] = [];
    const check = (self: number) => () => {
      const other = sinks[1 - self]!;
      if (other.open > 0) overlaps.push(`${sinks[self]!.host} while ${other.host} had ${other.open} open`);
      return undefined;
    };
    const sinks = await startSinks([
      { host: '127.0.0.2', mail: check(0) },
      { host: '127.0.0.3', mail: check(1) },
    ]);
    const zone: Zone = {
      'one.test': { mx: [{ exchange: 'a.mx.provider.test', priority: 10 }] },
      'two.test': { mx: [{ exchange: 'b.mx.provider.test', priority: 10 }] },
      'a.mx.provider.test': { a: ['127.0.0.2'] },
      'b.mx.provider.test': { a: ['127.0.0.3'] },
    };
    const { send } = await setup(
      { destinations: [{ name: 'provider', mx_suffixes: ['mx.provider.test'], max_connections: 1 }] },
      [],
      {},
      undefined,
      { sinks, zone },
    );
    for (let i = 0; i < 3; i++) {
      await send(`user${i}@one.test`);
      await waitFor(() => sinks[0]!.messages.length === i + 1, 'the message to one.test');
      await send(`user${i}@two.test`);
      await waitFor(() => sinks[1]!.messages.length === i + 1, 'the message to two.test');
    }
    expect(overlaps).toEqual([]);
  });

  it("a destination's messages_per_connection and TLS mode apply to its connections, still one at a time", async () => {
    const { sink, send } = await setup(
      { destinations: [{ name: 'shared', mx_suffixes: ['shared.test'], max_connections: 1, messages_per_connection: 2, tls: 'none' }] },
      ['one.test'],
      { starttls: true },
    );
    for (let i = 0; i < 5; i++) await send(`user${i}@one.test`);
    await waitFor(() => sink.messages.length === 5, 'every message at the sink');
    const perConnection = new Map<string, number>();
    for (const m of sink.messages) perConnection.set(m.connectionId, (perConnection.get(m.connectionId) ?? 0) + 1);
    expect(Math.max(...perConnection.values())).toBe(2);
    expect(perConnection.size).toBeGreaterThanOrEqual(3);
    // A used-up connection is closed before the next one opens.
    expect(sink.peakOpen).toBe(1);
    // The sink offers STARTTLS, which delivery.tls (opportunistic) would use; the destination says none.
    expect(sink.messages.every((m) => !m.secure)).toBe(true);
  });

  it('(control) without a matching destination the same mail opens several connections at once', async () => {
    const { sink, send } = await setup(
      { destinations: [{ name: 'elsewhere', domains: ['elsewhere.test'] }] },
      ['one.test', 'two.test'],
      slowSink,
    );
    await Promise.all(recipients.map(send));
    await waitFor(() => sink.messages.length === recipients.length, 'every message at the sink');
    expect(sink.peakOpen).toBeGreaterThan(1);
  });
});

describe('relay shaping status', { timeout: 60_000 }, () => {
  it('shows the configured rules without a running relay, and the live budgets with one', async () => {
    assertBuilt();
    const offline = writeTestConfig({ http: { port: 9, admin_token: ADMIN_TOKEN } });
    const configured = await runCli(['--config', offline, 'shaping', 'status'], { cwd: path.dirname(offline) });
    expect(configured.code).toBe(0);
    expect(configured.stdout).toMatch(/State: no live state: relay serve is not reachable at http:\/\/127\.0\.0\.1:9\/v1\/shaping/);
    expect(configured.stdout).toMatch(/^gmail +gmail\.com, googlemail\.com, MX \*\.google\.com, MX \*\.googlemail\.com +5 +50 +20\/s/m);
    const json = JSON.parse((await runCli(['--config', offline, 'shaping', 'status', '--json'], { cwd: path.dirname(offline) })).stdout);
    expect(json).toMatchObject({ live: false, destinations: expect.arrayContaining([expect.objectContaining({ name: 'yahoo' })]) });
    expect(json.destinations[0].current).toBeUndefined();

    const { relay, sink, send } = await setup(
      { destinations: [{ name: 'shared', mx_suffixes: ['shared.test'], max_connections: 3, messages_per_minute: 600, tls: 'none' }] },
      ['one.test'],
    );
    await send('someone@one.test');
    await waitFor(() => sink.messages.length === 1, 'the message at the sink');
    const online = writeTestConfig({ http: { port: relay.ports.http, admin_token: ADMIN_TOKEN } });
    const live = await runCli(['--config', online, 'shaping', 'status'], { cwd: path.dirname(online) });
    expect(live.code).toBe(0);
    expect(live.stdout).toContain(`State: live state from http://127.0.0.1:${relay.ports.http}/v1/shaping`);
    expect(live.stdout).toMatch(/^shared +MX \*\.shared\.test +3 +- +600\/m +none +1 +no +0$/m);
  });
});

describe('reloading the shaping rules', { timeout: 60_000 }, () => {
  it('SIGHUP applies a changed rules file, and keeps the running rules when the new file is invalid', async () => {
    const { relay, api } = await setup({ destinations: [{ name: 'shared', mx_suffixes: ['shared.test'], max_connections: 1 }] }, [
      'one.test',
    ]);
    const rulesFile = relay.config.shaping.rules!;
    writeFileSync(rulesFile, YAML.stringify({ destinations: [{ name: 'shared', mx_suffixes: ['shared.test'], max_connections: 4 }] }));
    await relay.reload(loadConfig(relay.configFile));
    expect((await api('GET', '/v1/shaping')).body.destinations[0].configured.max_connections).toBe(4);

    writeFileSync(rulesFile, YAML.stringify({ destinations: [{ name: 'shared', max_connections: 'many' }] }));
    await expect(relay.reload(loadConfig(relay.configFile))).rejects.toThrow(/destinations\.0 \(shared\)\.max_connections/);
    expect((await api('GET', '/v1/shaping')).body.destinations[0].configured.max_connections).toBe(4);
  });
});
