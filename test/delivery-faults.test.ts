/**
 * Delivery under faults, against real loopback peers: a DNS server that never answers, MX
 * records that point at aliases (CNAME), next hops without SMTPUTF8, and a store whose
 * claimDue/recordOutcomes throw for a while. Messages go in with Store.enqueue.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadBounceRules } from '../src/bounces/classify.js';
import { parseConfig } from '../src/config/load.js';
import { DeliveryLoop } from '../src/delivery/loop.js';
import { createLogger } from '../src/log.js';
import { openStore } from '../src/queue/sqlite.js';
import type { EventRow, Store } from '../src/queue/store.js';
import { startDnsServer, type TestDnsServer } from './helpers/dns.js';
import { startSinks, type Sink } from './helpers/sink.js';
import { waitFor } from './helpers/wait.js';

const dir = mkdtempSync(path.join(tmpdir(), 'relay-delivery-faults-'));
const HOSTS = { plain: '127.0.0.2', noUtf8: '127.0.0.3' };

let dns: TestDnsServer;
let plain: Sink;
let noUtf8: Sink;
const running: { loop: DeliveryLoop; store: Store }[] = [];
const logLines: string[] = [];

beforeAll(async () => {
  dns = await startDnsServer({
    'mx.plain.test': { a: [HOSTS.plain] },
    'mx.noutf8.test': { a: [HOSTS.noUtf8] },
    // RFC 5321 5.1: an MX must not point at an alias, but when it does the alias is followed.
    'alias.plain.test': { cname: 'mx.plain.test' },
    'cname-mx.test': { mx: [{ exchange: 'alias.plain.test', priority: 10 }] },
    // The recipient domain itself is an alias of a domain with an MX.
    'plain.test': { mx: [{ exchange: 'mx.plain.test', priority: 10 }] },
    'aliased.test': { cname: 'plain.test' },
    'silent.test': { silent: true },
    'noutf8.test': { mx: [{ exchange: 'mx.noutf8.test', priority: 10 }] },
  });
  [plain, noUtf8] = (await startSinks([{ host: HOSTS.plain }, { host: HOSTS.noUtf8, smtputf8: false }])) as [Sink, Sink];
});

afterAll(async () => {
  for (const { loop, store } of running) {
    await loop.stop(2000);
    store.close();
  }
  await Promise.all([plain, noUtf8].filter(Boolean).map((s) => s.stop()));
  await dns?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function startLoop(name: string, wrapStore?: (store: Store) => Store) {
  const config = parseConfig({
    hostname: 'relay.test',
    database: path.join(dir, `${name}.db`),
    delivery: {
      dns_servers: [dns.address],
      smtp_port: plain.port,
      retry_schedule: ['1s'],
      poll_interval: '100ms',
      connect_timeout: '2s',
      dns_timeout: '500ms',
      lease: '1s',
    },
    log: { level: 'silent' },
  });
  const store = openStore(config);
  const logger = createLogger('info', { destination: { write: (line: string) => void logLines.push(line) } });
  const loop = new DeliveryLoop({ store: wrapStore ? wrapStore(store) : store, config, logger, rules: loadBounceRules(config.bounces.rules!) });
  loop.start();
  running.push({ loop, store });
  return { loop, store };
}

async function submit(relay: { loop: DeliveryLoop; store: Store }, to: string[], from = 'alice@sender.test'): Promise<string> {
  const queueId = randomUUID();
  const body = Buffer.from(`From: ${from}\r\nTo: ${to.join(', ')}\r\nSubject: ${queueId}\r\n\r\nHello.\r\n`);
  const now = Date.now();
  await relay.store.enqueue({ queueId, messageId: `<${queueId}@sender.test>`, credential: 'test', mailFrom: from, recipients: to, body, receivedAt: now, expiresAt: now + 3_600_000 });
  relay.loop.wake();
  return queueId;
}

const latest = (store: Store, queueId: string) => new Map(store.events({ queueId }).map((e) => [e.recipient, e]));

function outcome(store: Store, queueId: string, recipient: string, status: string): Promise<EventRow> {
  return waitFor(() => {
    const event = latest(store, queueId).get(recipient);
    return event?.status === status ? event : undefined;
  }, `${recipient} to be ${status}`, 10_000);
}

describe('DNS per RFC 5321', { timeout: 20_000 }, () => {
  it('defers when the DNS server never answers (timeout)', async () => {
    const relay = startLoop('timeout');
    const queueId = await submit(relay, ['ann@silent.test']);
    const event = await outcome(relay.store, queueId, 'ann@silent.test', 'deferred');
    expect(event.response).toMatch(/^451 4\.4\.3 DNS MX lookup for silent\.test failed temporarily \(ETIMEOUT\)/);
  });

  it('follows an MX that points at a CNAME, and a recipient domain that is a CNAME', async () => {
    const relay = startLoop('cname');
    const viaMx = await submit(relay, ['bob@cname-mx.test']);
    const viaDomain = await submit(relay, ['cat@aliased.test']);
    await outcome(relay.store, viaMx, 'bob@cname-mx.test', 'delivered');
    await outcome(relay.store, viaDomain, 'cat@aliased.test', 'delivered');
    expect(plain.messages.filter((m) => m.raw.includes(viaMx) || m.raw.includes(viaDomain))).toHaveLength(2);
  });
});

describe('internationalised addresses (RFC 6531)', { timeout: 20_000 }, () => {
  it('bounces with 5.6.7 the recipients that need SMTPUTF8 when the next hop does not offer it; the others go', async () => {
    const relay = startLoop('utf8');
    const queueId = await submit(relay, ['plain@noutf8.test', 'jörg@noutf8.test']);
    const bounced = await outcome(relay.store, queueId, 'jörg@noutf8.test', 'bounced');
    expect(bounced.smtp_code).toBe(553);
    expect(bounced.response).toMatch(/^553 5\.6\.7 .*does not offer SMTPUTF8/);
    await outcome(relay.store, queueId, 'plain@noutf8.test', 'delivered');
    const arrived = noUtf8.messages.filter((m) => m.raw.includes(queueId));
    expect(arrived.map((m) => m.rcptTo)).toEqual([['plain@noutf8.test']]);
  });

  it('bounces every recipient with 5.6.7 when the envelope sender needs SMTPUTF8 and the host lacks it', async () => {
    const relay = startLoop('utf8-sender');
    const queueId = await submit(relay, ['dan@noutf8.test'], 'zoë@sender.test');
    expect((await outcome(relay.store, queueId, 'dan@noutf8.test', 'bounced')).response).toMatch(/5\.6\.7 .*sender <zoë@sender\.test>/);
  });

  it('delivers an internationalised address to a host that offers SMTPUTF8', async () => {
    const relay = startLoop('utf8-ok');
    const queueId = await submit(relay, ['jörg@plain.test'], 'zoë@sender.test');
    await outcome(relay.store, queueId, 'jörg@plain.test', 'delivered');
    const arrived = plain.messages.find((m) => m.raw.includes(queueId))!;
    expect(arrived.rcptTo).toEqual(['jörg@plain.test']);
    expect(arrived.mailFrom).toBe('zoë@sender.test');
  });
});

/** The store with the named methods throwing a SQLite error for their first `count` calls. */
function failing(store: Store, failures: Record<string, number>, error: { code: string; message: string }): Store {
  return new Proxy(store, {
    get(target, name, receiver) {
      const value = Reflect.get(target, name, receiver) as unknown;
      if (typeof value !== 'function' || typeof name !== 'string') return value;
      return (...args: unknown[]) => {
        if ((failures[name] ?? 0) > 0) {
          failures[name]!--;
          throw Object.assign(new Error(error.message), { code: error.code });
        }
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

describe('the delivery loop under storage faults', { timeout: 20_000 }, () => {
  it('keeps working when claimDue and recordOutcomes throw for a while, logging each error', async () => {
    // Both names: the loop records outcomes with one or the other depending on batching.
    const relay = startLoop('store-faults', (store) =>
      failing(store, { claimDue: 3, recordOutcomes: 1, queueOutcomes: 1 }, { code: 'SQLITE_BUSY', message: 'database is locked' }),
    );
    const queueId = await submit(relay, ['eve@plain.test']);
    await outcome(relay.store, queueId, 'eve@plain.test', 'delivered');
    expect(logLines.filter((l) => l.includes('delivery scheduler error')).length).toBeGreaterThanOrEqual(3);
    expect(logLines.some((l) => l.includes('could not record outcomes'))).toBe(true);
    // The first delivery's outcome was lost, so the lease ran out and it went again: the one
    // duplicate window (between the remote 250 and our commit).
    expect(plain.messages.filter((m) => m.raw.includes(queueId))).toHaveLength(2);
  });
});
