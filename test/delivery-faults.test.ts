/**
 * Delivery under faults, against real loopback peers: a DNS server that never answers, MX
 * records that point at aliases (CNAME), next hops without SMTPUTF8, and a queue whose
 * claimDue/recordAttempt fail for a while. Messages go in with storage.queue.enqueue.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import type { DeliveryLoop, DeliveryLoopOptions } from '../src/delivery/loop.js';
import { createLogger } from '../src/log.js';
import { openSqlite } from '../src/queue/sqlite/index.js';
import type { EventRecord, MessageQueue, RecipientStatus, Storage } from '../src/queue/storage.js';
import { startDeliveryLoop } from './helpers/delivery-loop.js';
import { startDnsServer, type TestDnsServer } from './helpers/dns.js';
import { eventsOf } from './helpers/events.js';
import { startSinks, type Sink } from './helpers/sink.js';
import { waitFor } from './helpers/wait.js';
import { partsOf } from '../src/envelope/header.js';

const dir = mkdtempSync(path.join(tmpdir(), 'relay-delivery-faults-'));
const HOSTS = { plain: '127.0.0.2', noUtf8: '127.0.0.3' };

let dns: TestDnsServer;
let plain: Sink;
let noUtf8: Sink;
interface Relay {
  loop: DeliveryLoop;
  storage: Storage;
}

const running: Relay[] = [];
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
  for (const { loop, storage } of running) {
    await loop.stop(2000);
    await storage.close();
  }
  await Promise.all([plain, noUtf8].filter(Boolean).map((s) => s.stop()));
  await dns?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function startLoop(name: string, wrapQueue?: (queue: MessageQueue) => DeliveryLoopOptions['queue']): Promise<Relay> {
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
  const storage = await openSqlite(config.database);
  const logger = createLogger('info', { destination: { write: (line: string) => void logLines.push(line) } });
  const loop = startDeliveryLoop({ config, storage, logger, node: `node-${name}`, wrapQueue });
  const relay: Relay = { loop, storage };
  running.push(relay);
  return relay;
}

async function submit(relay: Relay, to: string[], from = 'alice@sender.test'): Promise<string> {
  const queueId = randomUUID();
  const body = Buffer.from(`From: ${from}\r\nTo: ${to.join(', ')}\r\nSubject: ${queueId}\r\n\r\nHello.\r\n`);
  const now = Date.now();
  const result = await relay.storage.queue.enqueue({
    queueId,
    messageId: `<${queueId}@sender.test>`,
    credential: 'test',
    mailFrom: from,
    recipients: to,
    body: partsOf(body),
    receivedAt: now,
    expiresAt: now + 3_600_000,
  });
  expect(result).toEqual({ status: 'queued' });
  relay.loop.wake();
  return queueId;
}

const latest = async (storage: Storage, queueId: string) => new Map((await eventsOf(storage, { queueId })).map((e) => [e.recipient, e]));

function outcome(storage: Storage, queueId: string, recipient: string, status: RecipientStatus): Promise<EventRecord> {
  return waitFor(
    async () => {
      const event = (await latest(storage, queueId)).get(recipient);
      return event?.status === status ? event : undefined;
    },
    `${recipient} to be ${status}`,
    10_000,
  );
}

describe('DNS per RFC 5321', { timeout: 20_000 }, () => {
  it('defers when the DNS server never answers (timeout)', async () => {
    const relay = await startLoop('timeout');
    const queueId = await submit(relay, ['ann@silent.test']);
    const event = await outcome(relay.storage, queueId, 'ann@silent.test', 'deferred');
    expect(event.response).toMatch(/^451 4\.4\.3 DNS MX lookup for silent\.test failed temporarily \(ETIMEOUT\)/);
  });

  it('follows an MX that points at a CNAME, and a recipient domain that is a CNAME', async () => {
    const relay = await startLoop('cname');
    const viaMx = await submit(relay, ['bob@cname-mx.test']);
    const viaDomain = await submit(relay, ['cat@aliased.test']);
    await outcome(relay.storage, viaMx, 'bob@cname-mx.test', 'delivered');
    await outcome(relay.storage, viaDomain, 'cat@aliased.test', 'delivered');
    expect(plain.messages.filter((m) => m.raw.includes(viaMx) || m.raw.includes(viaDomain))).toHaveLength(2);
  });
});

describe('internationalised addresses (RFC 6531)', { timeout: 20_000 }, () => {
  it('bounces with 5.6.7 the recipients that need SMTPUTF8 when the next hop does not offer it; the others go', async () => {
    const relay = await startLoop('utf8');
    const queueId = await submit(relay, ['plain@noutf8.test', 'jörg@noutf8.test']);
    const bounced = await outcome(relay.storage, queueId, 'jörg@noutf8.test', 'bounced');
    expect(bounced.smtpCode).toBe(553);
    expect(bounced.response).toMatch(/^553 5\.6\.7 .*does not offer SMTPUTF8/);
    await outcome(relay.storage, queueId, 'plain@noutf8.test', 'delivered');
    const arrived = noUtf8.messages.filter((m) => m.raw.includes(queueId));
    expect(arrived.map((m) => m.rcptTo)).toEqual([['plain@noutf8.test']]);
  });

  it('bounces every recipient with 5.6.7 when the envelope sender needs SMTPUTF8 and the host lacks it', async () => {
    const relay = await startLoop('utf8-sender');
    const queueId = await submit(relay, ['dan@noutf8.test'], 'zoë@sender.test');
    expect((await outcome(relay.storage, queueId, 'dan@noutf8.test', 'bounced')).response).toMatch(/5\.6\.7 .*sender <zoë@sender\.test>/);
  });

  it('delivers an internationalised address to a host that offers SMTPUTF8', async () => {
    const relay = await startLoop('utf8-ok');
    const queueId = await submit(relay, ['jörg@plain.test'], 'zoë@sender.test');
    await outcome(relay.storage, queueId, 'jörg@plain.test', 'delivered');
    const arrived = plain.messages.find((m) => m.raw.includes(queueId))!;
    expect(arrived.rcptTo).toEqual(['jörg@plain.test']);
    expect(arrived.mailFrom).toBe('zoë@sender.test');
  });
});

/** The queue with claimDue and recordAttempt failing with a SQLite error for their first `count` calls. */
function failing(
  queue: MessageQueue,
  failures: { claimDue: number; recordAttempt: number },
  error: { code: string; message: string },
): DeliveryLoopOptions['queue'] {
  const fault = (name: keyof typeof failures) => {
    if (failures[name] <= 0) return undefined;
    failures[name]--;
    return Object.assign(new Error(error.message), { code: error.code });
  };
  return {
    async claimDue(now, limit, lease) {
      const err = fault('claimDue');
      if (err) throw err;
      return queue.claimDue(now, limit, lease);
    },
    async recordAttempt(attempt) {
      const err = fault('recordAttempt');
      if (err) throw err;
      return queue.recordAttempt(attempt);
    },
    body: (queueId) => queue.body(queueId),
    nextDueAt: () => queue.nextDueAt(),
  };
}

describe('the delivery loop under storage faults', { timeout: 20_000 }, () => {
  it('keeps working when claimDue and recordAttempt fail for a while, logging each error', async () => {
    const relay = await startLoop('storage-faults', (queue) =>
      failing(queue, { claimDue: 3, recordAttempt: 1 }, { code: 'SQLITE_BUSY', message: 'database is locked' }),
    );
    const queueId = await submit(relay, ['eve@plain.test']);
    await outcome(relay.storage, queueId, 'eve@plain.test', 'delivered');
    expect(logLines.filter((l) => l.includes('delivery scheduler error')).length).toBeGreaterThanOrEqual(3);
    expect(logLines.some((l) => l.includes('could not record outcomes'))).toBe(true);
    // The first delivery's outcome was lost, so the lease ran out and it went again: the one
    // duplicate window (between the remote 250 and our commit).
    expect(plain.messages.filter((m) => m.raw.includes(queueId))).toHaveLength(2);
  });
});
