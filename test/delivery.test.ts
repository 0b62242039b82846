/**
 * DeliveryLoop against real loopback peers: an in-process DNS server and smtp-server sinks on
 * 127.0.0.2-127.0.0.8 (one shared port, as MX hosts share smtp_port), with nothing listening on
 * 127.0.0.9. Messages go in with storage.queue.enqueue; outcomes are read back from storage.events.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { buildDsn } from '../src/bounces/dsn.js';
import { parseConfig } from '../src/config/load.js';
import type { RelayConfig } from '../src/config/schema.js';
import type { DeliveryLoop, DeliveryLoopOptions } from '../src/delivery/loop.js';
import { retryDelay, scheduleRetry } from '../src/delivery/retry.js';
import type { Clock } from '../src/envelope/time.js';
import { createLogger } from '../src/log.js';
import { openSqlite } from '../src/queue/sqlite/index.js';
import type { EventRecord, MessageQueue, RecipientStatus, Storage } from '../src/queue/storage.js';
import { startDeliveryLoop } from './helpers/delivery-loop.js';
import { startDnsServer, type TestDnsServer } from './helpers/dns.js';
import { eventsOf } from './helpers/events.js';
import { startSinks, type Sink } from './helpers/sink.js';
import { waitFor } from './helpers/wait.js';
import { testClock } from './helpers/clock.js';
import { storedBody } from './helpers/relay.js';
import { partsOf, type MessageParts } from '../src/envelope/header.js';

const logger = createLogger(process.env.LOG_LEVEL ?? 'silent');
const dir = mkdtempSync(path.join(tmpdir(), 'relay-delivery-'));

const HOSTS = {
  plain: '127.0.0.2',
  reject: '127.0.0.3',
  grey: '127.0.0.4',
  tls: '127.0.0.5',
  reuse: '127.0.0.6',
  dataFail: '127.0.0.7',
  stop: '127.0.0.8',
  dead: '127.0.0.9',
};

const mx = (...hosts: [priority: number, exchange: string][]) => hosts.map(([priority, exchange]) => ({ priority, exchange }));

const ZONE = {
  'ok.test': { mx: mx([10, 'mx-dead.ok.test'], [20, 'mx.ok.test']) },
  'mx-dead.ok.test': { a: [HOSTS.dead] },
  'mx.ok.test': { a: [HOSTS.plain] },
  'sender.test': { mx: mx([10, 'mx.ok.test']) },
  'reject.test': { mx: mx([10, 'mx.reject.test']) },
  'mx.reject.test': { a: [HOSTS.reject] },
  'grey.test': { mx: mx([10, 'mx.grey.test']) },
  'mx.grey.test': { a: [HOSTS.grey] },
  'tls.test': { mx: mx([10, 'mx.tls.test']) },
  'mx.tls.test': { a: [HOSTS.tls] },
  'reuse.test': { mx: mx([10, 'mx.reuse.test']) },
  'mx.reuse.test': { a: [HOSTS.reuse] },
  'datafail.test': { mx: mx([10, 'mx.datafail.test']) },
  'mx.datafail.test': { a: [HOSTS.dataFail] },
  'stop.test': { mx: mx([10, 'mx.stop.test']) },
  'mx.stop.test': { a: [HOSTS.stop] },
  // No MX: the domain's own address is used.
  'implicit.test': { a: [HOSTS.plain] },
  // An IP literal and a name with no address are skipped.
  'skip.test': { mx: mx([5, HOSTS.tls], [10, 'nowhere.skip.test'], [20, 'mx.ok.test']) },
  'nullmx.test': { mx: mx([0, '']) },
  'servfail.test': { rcode: 'SERVFAIL' as const },
  'down.test': { rcode: 'SERVFAIL' as const },
  'broken.test': { mx: mx([10, 'mx.ok.test']) },
};

let dns: TestDnsServer;
let sinks: Record<keyof typeof HOSTS, Sink>;
const running: Relay[] = [];

beforeAll(async () => {
  dns = await startDnsServer(ZONE);
  const [plain, reject, grey, tls, reuse, dataFail, stop] = await startSinks([
    { host: HOSTS.plain },
    { host: HOSTS.reject, rcpt: (address) => (address.startsWith('unknown') ? `550 5.1.1 <${address}>: user unknown` : undefined) },
    { host: HOSTS.grey, rcpt: (_address, seen) => (seen === 0 ? '451 4.7.1 Greylisted, please come back later' : undefined) },
    { host: HOSTS.tls, starttls: true },
    { host: HOSTS.reuse },
    {
      host: HOSTS.dataFail,
      rcpt: (address) => (address.startsWith('unknown') ? `550 5.1.1 <${address}>: user unknown` : undefined),
      data: () => '554 5.6.0 message content rejected',
    },
    { host: HOSTS.stop },
  ]);
  sinks = { plain: plain!, reject: reject!, grey: grey!, tls: tls!, reuse: reuse!, dataFail: dataFail!, stop: stop!, dead: undefined! };
});

afterAll(async () => {
  for (const { loop, storage } of running) {
    await loop.stop(2000);
    await storage.close();
  }
  await Promise.all(
    Object.values(sinks ?? {})
      .filter(Boolean)
      .map((s) => s.stop()),
  );
  await dns?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function relayConfig(name: string, delivery: Record<string, unknown> = {}, bounces: Record<string, unknown> = {}): RelayConfig {
  return parseConfig(
    {
      hostname: 'relay.test',
      database: path.join(dir, `${name}.db`),
      delivery: {
        dns_servers: [dns.address],
        smtp_port: sinks.plain.port,
        retry_schedule: ['1s'],
        poll_interval: '100ms',
        connect_timeout: '2s',
        dns_timeout: '1s',
        idle_timeout: '3s',
        concurrency: 8,
        per_domain_concurrency: 1,
        ...delivery,
      },
      bounces: { notify_sender: true, ...bounces },
      log: { level: 'silent' },
    },
    undefined,
  );
}

/** The credential test messages are submitted under. */
const CREDENTIAL = 'test';

async function startLoop(
  name: string,
  delivery?: Record<string, unknown>,
  wrapQueue?: (queue: MessageQueue) => DeliveryLoopOptions['queue'],
  clock?: Clock,
) {
  const config = relayConfig(name, delivery);
  const storage = await openSqlite(config.database);
  const notified = new Set<string>();
  const loop = startDeliveryLoop({ config, storage, logger, node: `node-${name}`, wrapQueue, clock, onNotified: (id) => notified.add(id) });
  const relay: Relay = { loop, storage, notified };
  running.push(relay);
  return relay;
}

interface Relay {
  loop: DeliveryLoop;
  storage: Storage;
  /** Queue ids whose attempt outcomes the bounce notifier has finished with. */
  notified: Set<string>;
}

async function submit(relay: Relay, to: string[], opts: { from?: string; expiresIn?: number; subject?: string } = {}): Promise<string> {
  const queueId = randomUUID();
  const body = Buffer.from(
    [
      `From: Alice <${opts.from ?? 'alice@sender.test'}>`,
      `To: ${to.join(', ')}`,
      `Subject: ${opts.subject ?? queueId}`,
      `Message-ID: <${queueId}@sender.test>`,
      '',
      'Hello.',
      '',
    ].join('\r\n'),
  );
  const now = Date.now();
  const result = await relay.storage.queue.enqueue({
    queueId,
    messageId: `<${queueId}@sender.test>`,
    credential: CREDENTIAL,
    mailFrom: opts.from ?? 'alice@sender.test',
    recipients: to,
    body: partsOf(body),
    receivedAt: now,
    expiresAt: now + (opts.expiresIn ?? 3_600_000),
  });
  expect(result).toEqual({ status: 'queued' });
  relay.loop.wake();
  return queueId;
}

/** Wraps the loop's queue to count its claims. */
function countingClaims() {
  const counter = {
    claims: 0,
    wrap: (queue: MessageQueue): DeliveryLoopOptions['queue'] => ({
      claimDue: (now, limit, lease) => {
        counter.claims++;
        return queue.claimDue(now, limit, lease);
      },
      body: (queueId) => queue.body(queueId),
      recordAttempt: (attempt) => queue.recordAttempt(attempt),
      nextDueAt: () => queue.nextDueAt(),
    }),
  };
  return counter;
}

/** The latest event per recipient of a message. */
async function latest(storage: Storage, queueId: string): Promise<Map<string, EventRecord>> {
  return new Map((await eventsOf(storage, { queueId })).map((e) => [e.recipient, e]));
}

/** Waits until every recipient of the message has one of the statuses. */
function settled(storage: Storage, queueId: string, count: number, statuses: RecipientStatus[] = ['delivered', 'bounced', 'expired']) {
  return waitFor(
    async () => {
      const events = await latest(storage, queueId);
      return events.size === count && [...events.values()].every((e) => statuses.includes(e.status)) ? events : undefined;
    },
    `${queueId} to be ${statuses.join(' or ')}`,
    8000,
  );
}

const received = (sink: Sink, queueId: string) => sink.messages.filter((m) => m.raw.includes(queueId));

describe('DeliveryLoop', { timeout: 20_000 }, () => {
  let relay: Relay;
  beforeAll(async () => {
    relay = await startLoop('main');
  });

  it('delivers to several recipients of a domain in one transaction, past a dead MX', async () => {
    const queueId = await submit(relay, ['bob@ok.test', 'carol@ok.test']);
    const events = await settled(relay.storage, queueId, 2);
    expect(events.get('bob@ok.test')).toMatchObject({ status: 'delivered', smtpCode: 250 });
    const [message, ...more] = received(sinks.plain, queueId);
    expect(more).toHaveLength(0);
    expect(message!.rcptTo).toEqual(['bob@ok.test', 'carol@ok.test']);
    expect(message!.mailFrom).toBe('alice@sender.test');
    expect(message!.secure).toBe(false);
  });

  it('uses the A record when a domain has no MX', async () => {
    const queueId = await submit(relay, ['dan@implicit.test']);
    expect((await settled(relay.storage, queueId, 1)).get('dan@implicit.test')!.status).toBe('delivered');
    expect(received(sinks.plain, queueId)).toHaveLength(1);
  });

  it('skips MX hosts that are IP literals or have no address', async () => {
    const queueId = await submit(relay, ['erin@skip.test']);
    expect((await settled(relay.storage, queueId, 1)).get('erin@skip.test')!.status).toBe('delivered');
    expect(received(sinks.plain, queueId)).toHaveLength(1);
    expect(received(sinks.tls, queueId)).toHaveLength(0);
  });

  it('bounces a refused recipient, delivers the other, suppresses and notifies the sender', async () => {
    const queueId = await submit(relay, ['unknown@reject.test', 'frank@reject.test']);
    const events = await settled(relay.storage, queueId, 2);
    expect(events.get('frank@reject.test')!.status).toBe('delivered');
    expect(events.get('unknown@reject.test')).toMatchObject({
      status: 'bounced',
      smtpCode: 550,
      response: '550 5.1.1 <unknown@reject.test>: user unknown',
      category: 'bad_mailbox',
    });
    expect(received(sinks.reject, queueId)[0]!.rcptTo).toEqual(['frank@reject.test']);
    // A hard bounce suppresses the address for the credential that sent the message only.
    expect(await relay.storage.suppressions.isSuppressed('unknown@reject.test', CREDENTIAL)).toBe(true);
    expect(await relay.storage.suppressions.isSuppressed('unknown@reject.test', 'another-app')).toBe(false);
    expect(await relay.storage.suppressions.list()).toContainEqual(
      expect.objectContaining({ address: 'unknown@reject.test', credential: CREDENTIAL }),
    );

    const dsn = await waitFor(() => received(sinks.plain, queueId).find((m) => m.mailFrom === ''), 'the bounce notification');
    expect(dsn.rcptTo).toEqual(['alice@sender.test']);
    const text = dsn.raw.toString();
    expect(text).toContain('From: Mail Delivery System <MAILER-DAEMON@relay.test>');
    expect(text).toMatch(/Content-Type: multipart\/report; report-type=delivery-status/);
    expect(text).toContain('Final-Recipient: rfc822; unknown@reject.test');
    expect(text).toContain('Status: 5.1.1');
    expect(text).toContain('Diagnostic-Code: smtp; 550 5.1.1 <unknown@reject.test>: user unknown');
    expect(text).toContain(`Subject: ${queueId}`);
    expect(text).not.toContain('Hello.');
    expect(text).not.toContain('frank@reject.test>:');
  });

  it('defers on 451, then delivers on the retry', async () => {
    // Ahead of the wall clock, so the message (queued at wall-clock time) is due at once.
    const clock = testClock(Date.now() + 60_000);
    const retrying = await startLoop('retry', {}, undefined, clock.now);
    const queueId = await submit(retrying, ['gina@grey.test']);
    const deferred = await settled(retrying.storage, queueId, 1, ['deferred']);
    expect(deferred.get('gina@grey.test')).toMatchObject({ smtpCode: 451, category: 'rate_limited' });
    const entry = await retrying.storage.queue.message(queueId);
    // retry_schedule 1s, ±10% jitter, counted from the (stopped) clock.
    const next = entry!.recipients[0]!.nextAttemptAt! - clock.now();
    expect(next).toBeGreaterThanOrEqual(900);
    expect(next).toBeLessThanOrEqual(1100);
    clock.advance(1100);
    retrying.loop.wake();
    const events = await settled(retrying.storage, queueId, 1);
    expect(events.get('gina@grey.test')!.status).toBe('delivered');
    expect(received(sinks.grey, queueId)).toHaveLength(1);
  });

  it('applies a failure at DATA to every recipient accepted at RCPT', async () => {
    const queueId = await submit(relay, ['unknown@datafail.test', 'hal@datafail.test', 'ivy@datafail.test']);
    const events = await settled(relay.storage, queueId, 3);
    expect(events.get('unknown@datafail.test')).toMatchObject({
      status: 'bounced',
      response: '550 5.1.1 <unknown@datafail.test>: user unknown',
    });
    for (const rcpt of ['hal@datafail.test', 'ivy@datafail.test']) {
      expect(events.get(rcpt)).toMatchObject({
        status: 'bounced',
        smtpCode: 554,
        response: '554 5.6.0 message content rejected',
        category: 'content',
      });
    }
  });

  it('bounces at once for a null MX and for a domain that does not exist', async () => {
    const queueId = await submit(relay, ['jo@nullmx.test', 'kim@nx.test']);
    const events = await settled(relay.storage, queueId, 2);
    expect(events.get('jo@nullmx.test')).toMatchObject({
      status: 'bounced',
      smtpCode: 550,
      response: '550 5.1.10 recipient domain nullmx.test accepts no mail (null MX)',
      category: 'bad_domain',
    });
    expect(events.get('kim@nx.test')).toMatchObject({ status: 'bounced', smtpCode: 550, category: 'bad_domain' });
    expect(events.get('kim@nx.test')!.response).toMatch(/^550 5\.1\.2 /);
  });

  it('defers on SERVFAIL and delivers once DNS answers', async () => {
    const queueId = await submit(relay, ['lee@servfail.test']);
    const deferred = await settled(relay.storage, queueId, 1, ['deferred']);
    expect(deferred.get('lee@servfail.test')!.response).toMatch(/^451 4\.4\.3 .*ESERVFAIL/);
    dns.setZone('servfail.test', { mx: mx([10, 'mx.ok.test']) });
    expect((await settled(relay.storage, queueId, 1)).get('lee@servfail.test')!.status).toBe('delivered');
  });

  it('expires instead of deferring past max age, and tells the sender', async () => {
    const queueId = await submit(relay, ['max@down.test'], { expiresIn: 500 });
    const events = await settled(relay.storage, queueId, 1);
    expect(events.get('max@down.test')).toMatchObject({ status: 'expired' });
    const dsn = await waitFor(() => received(sinks.plain, queueId).find((m) => m.mailFrom === ''), 'the bounce notification');
    expect(dsn.raw.toString()).toContain('Final-Recipient: rfc822; max@down.test');
    expect(dsn.raw.toString()).toContain('Status: 4.4.7');
  });

  it('never sends a notification about a notification', async () => {
    const before = sinks.plain.messages.length;
    const queueId = await submit(relay, ['unknown@reject.test'], { from: '' });
    expect((await settled(relay.storage, queueId, 1)).get('unknown@reject.test')!.status).toBe('bounced');
    await waitFor(() => relay.notified.has(queueId), 'the bounce notifier to finish with the attempt');
    const notices = (await relay.storage.queue.pending()).filter((m) => m.mailFrom === '');
    const bodies = await Promise.all(notices.map((m) => storedBody(relay.storage.queue, m.queueId)));
    expect(bodies.filter((b) => b?.includes(queueId))).toHaveLength(0);
    expect(sinks.plain.messages.slice(before).filter((m) => m.raw.includes(queueId))).toHaveLength(0);
  });

  it('reuses one connection for consecutive messages to a host', async () => {
    const before = sinks.reuse.connections;
    const ids = [await submit(relay, ['a@reuse.test']), await submit(relay, ['b@reuse.test']), await submit(relay, ['c@reuse.test'])];
    for (const id of ids) await settled(relay.storage, id, 1);
    const connectionIds = new Set(ids.flatMap((id) => received(sinks.reuse, id).map((m) => m.connectionId)));
    expect(connectionIds.size).toBe(1);
    expect(sinks.reuse.connections - before).toBe(1);
  });
});

describe('TLS modes', { timeout: 20_000 }, () => {
  it('uses STARTTLS when offered (opportunistic)', async () => {
    const relay = await startLoop('tls-opportunistic');
    const queueId = await submit(relay, ['nina@tls.test']);
    expect((await settled(relay.storage, queueId, 1)).get('nina@tls.test')!.status).toBe('delivered');
    expect(received(sinks.tls, queueId)[0]!.secure).toBe(true);
  });

  it('refuses to deliver in clear when TLS is required', async () => {
    const relay = await startLoop('tls-required', { tls: 'required' });
    const plainId = await submit(relay, ['otto@ok.test']);
    const tlsId = await submit(relay, ['pia@tls.test']);
    const deferred = await settled(relay.storage, plainId, 1, ['deferred']);
    expect(deferred.get('otto@ok.test')!.response).toBe('4.7.10 TLS required but mx.ok.test does not offer STARTTLS');
    expect(received(sinks.plain, plainId)).toHaveLength(0);
    expect((await settled(relay.storage, tlsId, 1)).get('pia@tls.test')!.status).toBe('delivered');
    expect(received(sinks.tls, tlsId)[0]!.secure).toBe(true);
  });

  it('never tries TLS with tls: none', async () => {
    const relay = await startLoop('tls-none', { tls: 'none' });
    const queueId = await submit(relay, ['quinn@tls.test']);
    expect((await settled(relay.storage, queueId, 1)).get('quinn@tls.test')!.status).toBe('delivered');
    expect(received(sinks.tls, queueId)[0]!.secure).toBe(false);
  });
});

describe('resilience', { timeout: 20_000 }, () => {
  it('holds mail while delivery is paused', async () => {
    const counter = countingClaims();
    // The loop's timers are faked, so a minute of polls runs at once (the store's setImmediate stays real).
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const relay = await startLoop('paused', { paused: true }, counter.wrap);
      const queueId = await submit(relay, ['rae@ok.test']);
      vi.advanceTimersByTime(60_000);
      expect(counter.claims).toBe(0);
      expect((await latest(relay.storage, queueId)).get('rae@ok.test')!.status).toBe('queued');
    } finally {
      vi.useRealTimers();
    }
  });

  it('defers with 451 4.3.0 when an attempt fails unexpectedly', async () => {
    // Not a message: the attempt throws once it reads it.
    const brokenBody = (queue: MessageQueue): DeliveryLoopOptions['queue'] => ({
      claimDue: (now, limit, lease) => queue.claimDue(now, limit, lease),
      body: async () => ({}) as MessageParts,
      recordAttempt: (attempt) => queue.recordAttempt(attempt),
      nextDueAt: () => queue.nextDueAt(),
    });
    const relay = await startLoop('internal-error', {}, brokenBody);
    const queueId = await submit(relay, ['sam@broken.test']);
    const deferred = await settled(relay.storage, queueId, 1, ['deferred']);
    expect(deferred.get('sam@broken.test')).toMatchObject({ smtpCode: 451, response: '451 4.3.0 internal error' });
  });

  it('stops promptly, closes its pooled connections and claims nothing afterwards', async () => {
    const counter = countingClaims();
    // An idle session would stay open far longer than the test: only stop() can close it.
    const relay = await startLoop('stop', { idle_timeout: '10m' }, counter.wrap);
    const queueId = await submit(relay, ['tom@stop.test']);
    await settled(relay.storage, queueId, 1);
    expect(sinks.stop.open).toBe(1);
    await relay.loop.stop(60_000);
    await waitFor(() => sinks.stop.open === 0, 'the pooled connection to close');
    const claims = counter.claims;
    expect(claims).toBeGreaterThan(0);
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const later = await submit(relay, ['uma@stop.test']);
      vi.advanceTimersByTime(60_000);
      expect(counter.claims).toBe(claims);
      expect((await latest(relay.storage, later)).get('uma@stop.test')!.status).toBe('queued');
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('retry schedule', () => {
  it('uses the schedule entry for the attempt, the last one repeating, with ±10% jitter', () => {
    const schedule = [60_000, 600_000];
    expect(retryDelay(schedule, 1, () => 0.5)).toBe(60_000);
    expect(retryDelay(schedule, 2, () => 0.5)).toBe(600_000);
    expect(retryDelay(schedule, 7, () => 0.5)).toBe(600_000);
    expect(retryDelay(schedule, 1, () => 0)).toBe(54_000);
    expect(retryDelay(schedule, 1, () => 1)).toBe(66_000);
  });

  it('expires when the next attempt would come after expiresAt', () => {
    const base = { schedule: [60_000], attempt: 1, now: 0, random: () => 0.5 };
    expect(scheduleRetry({ ...base, expiresAt: 120_000 })).toEqual({ status: 'deferred', nextAttemptAt: 60_000 });
    expect(scheduleRetry({ ...base, expiresAt: 30_000 })).toEqual({ status: 'expired' });
  });
});

describe('buildDsn', () => {
  it('writes an RFC 3464 report with CRLF line endings and the original headers only', () => {
    const message = Buffer.from('From: a@sender.test\r\nSubject: hi\r\n\r\nsecret body\r\n');
    const { body, messageId } = buildDsn({
      hostname: 'relay.test',
      queueId: 'Q1',
      mailFrom: 'a@sender.test',
      receivedAt: Date.UTC(2026, 0, 1),
      message,
      recipients: [{ address: 'b@x.test', status: 'bounced', smtpCode: 550, response: `550 5.1.1 ${'long '.repeat(30)}end` }],
      now: new Date(Date.UTC(2026, 0, 2)),
    });
    const text = body.toString();
    expect(messageId).toMatch(/^<.+@relay\.test>$/);
    expect(text.replace(/\r\n/g, '')).not.toMatch(/[\r\n]/);
    expect(text).toContain('To: <a@sender.test>\r\n');
    expect(text).toContain('Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; relay.test\r\n');
    expect(text).toContain('Arrival-Date: Thu, 01 Jan 2026 00:00:00 +0000');
    expect(text).toContain('Action: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 long');
    expect(text).toContain('Content-Type: text/rfc822-headers\r\n\r\nFrom: a@sender.test\r\nSubject: hi\r\n');
    expect(text).not.toContain('secret body');
    expect(
      Math.max(
        ...text
          .split('\r\n')
          .filter((l) => l.startsWith('Diagnostic') || l.startsWith(' '))
          .map((l) => l.length),
      ),
    ).toBeLessThanOrEqual(78);
  });
});
