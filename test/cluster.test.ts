/**
 * Three `relay serve` processes on one PostgreSQL database, each with its own listener and node
 * name. Client apps submit round-robin while one node is SIGKILLed and restarted again and again;
 * every message that got a 250 must reach the MX, no message may be delivered by two nodes at
 * once, and when a node dies holding claimed recipients for good, the others take them over
 * within the lease.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/load.js';
import { openStorage } from '../src/queue/open.js';
import { assertBuilt } from './helpers/cli.js';
import { startDnsServer, type TestDnsServer } from './helpers/dns.js';
import { compare, submitLoad, tallySink, type LoadReport } from './helpers/load.js';
import { createTestDatabase, type TestDatabase } from './helpers/postgres.js';
import { addCredential, addSenderDomain, writeTestConfig } from './helpers/relay.js';
import { freePort, kill, startServe, transport, type ServeProcess, type ServeSetup } from './helpers/serve.js';
import { startSink, type ReceivedMessage, type Sink } from './helpers/sink.js';
import { waitFor } from './helpers/wait.js';

const NODES = ['node-a', 'node-b', 'node-c'] as const;
const VICTIM = 'node-b';
const MESSAGES = 5000;
const KILLS = 5;
/** Short, so that a dead node's claims run out within the test; heartbeats renew live ones. */
const LEASE = '3s';

let db: TestDatabase;
let dns: TestDnsServer;
let sink: Sink;
/** Holds the MX's reply to messages whose subject starts with "hold" until released. */
let hold: { release: () => void; promise: Promise<void> } | undefined;
const setups = new Map<string, ServeSetup>();
const serves = new Map<string, ServeProcess>();

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function newHold() {
  let release!: () => void;
  const promise = new Promise<void>((resolve) => (release = resolve));
  return { release, promise };
}

beforeAll(async () => {
  assertBuilt();
  db = await createTestDatabase();
  sink = await startSink({
    host: '127.0.0.2',
    // A little time at the MX, so every node has attempts in flight when it is killed.
    beforeReply: async (message) => {
      if (hold && /^Subject: hold/im.test(message.raw.toString('latin1', 0, 2000))) await hold.promise;
      else await sleep(Math.random() * 5);
    },
  });
  dns = await startDnsServer({
    'example.net': { mx: [{ exchange: 'mx.example.net', priority: 10 }] },
    'mx.example.net': { a: ['127.0.0.2'] },
  });
  const storage = await openStorage({ database: db.url, database_pool: 2 });
  let creds: { username: string; password: string };
  try {
    await addSenderDomain(storage, 'acme.test');
    creds = await addCredential(storage, 'app', ['acme.test']);
  } finally {
    await storage.close();
  }
  for (const name of NODES) {
    const port = await freePort();
    const configFile = writeTestConfig({
      hostname: `${name}.relay.test`,
      node_name: name,
      database: db.url,
      database_pool: 4,
      listeners: [{ name: 'smtps', host: '127.0.0.1', port, tls: 'implicit' }],
      delivery: { paused: false, dns_servers: [dns.address], smtp_port: sink.port, lease: LEASE, retry_schedule: ['500ms'] },
      log: { level: 'error' },
    });
    const config = loadConfig(configFile);
    setups.set(name, { configFile, dir: config.baseDir, database: config.database, port, creds });
  }
});

/** Set when the tests end, however they end, so no loop restarts a relay after them. */
let finished = false;

afterAll(async () => {
  finished = true;
  for (const serve of serves.values()) if (serve.child.exitCode === null) await kill(serve);
  await sink?.stop();
  await dns?.stop();
  await db?.drop();
});

const deliveredBy = (message: ReceivedMessage) => message.heloName.replace(/\.relay\.test$/, '');

describe('three nodes on one PostgreSQL database', () => {
  it(`delivers every acknowledged message while ${VICTIM} is SIGKILLed ${KILLS} times`, { timeout: 300_000 }, async () => {
    for (const name of NODES) serves.set(name, await startServe(setups.get(name)!));
    let kills = 0;
    let submitting = true;
    let failed = false;
    const killer = (async () => {
      while (kills < KILLS && submitting && !finished) {
        await sleep(800 + Math.random() * 1200);
        await kill(serves.get(VICTIM)!);
        serves.delete(VICTIM);
        kills++;
        if (!finished) serves.set(VICTIM, await startServe(setups.get(VICTIM)!));
      }
    })().catch((err: unknown) => {
      // Without the victim its clients would retry for ever: stop the load and report.
      failed = true;
      throw err;
    });
    const perNode = Math.ceil(MESSAGES / NODES.length);
    const reports = await Promise.all(
      NODES.map((name, i) =>
        submitLoad({
          port: setups.get(name)!.port,
          creds: setups.get(name)!.creds,
          clients: 2,
          messages: perNode,
          prefix: `cluster${i}`,
          stop: () => failed,
        }),
      ),
    );
    submitting = false;
    await killer;
    const report: LoadReport = { acknowledged: new Map(), retries: 0, refused: [] };
    for (const r of reports) {
      for (const [id, queueId] of r.acknowledged) report.acknowledged.set(id, queueId);
      report.retries += r.retries;
      report.refused.push(...r.refused);
    }

    await waitFor(() => compare(report, tallySink(sink)).lost.length === 0, 'every acknowledged message at the MX', 90_000).catch(() => {});
    const { lost, relayDuplicates, resubmissionDuplicates } = compare(report, tallySink(sink));

    // Two deliveries of one queue id that overlap in time would mean two nodes held the same claim.
    const byQueueId = new Map<string, ReceivedMessage[]>();
    for (const m of sink.messages) {
      const queueId = /with ESMTPS?A id (\S+);/.exec(m.raw.toString('latin1', 0, 4000))?.[1];
      if (queueId) byQueueId.set(queueId, [...(byQueueId.get(queueId) ?? []), m]);
    }
    let concurrent = 0;
    for (const copies of byQueueId.values()) {
      for (let i = 0; i < copies.length; i++) {
        for (let j = i + 1; j < copies.length; j++) {
          const [a, b] = [copies[i]!, copies[j]!];
          if (a.dataStartedAt < b.acceptedAt && b.dataStartedAt < a.acceptedAt) concurrent++;
        }
      }
    }
    const share = Object.fromEntries(NODES.map((n) => [n, sink.messages.filter((m) => deliveredBy(m) === n).length]));
    console.log(
      `cluster test: ${kills} kills of ${VICTIM}; ${report.acknowledged.size} of ${perNode * NODES.length} acknowledged (${report.retries} client retries); ` +
        `lost ${lost.length}; duplicates: ${relayDuplicates} relay (remote 250 before our commit), ${resubmissionDuplicates} from resubmissions; ` +
        `concurrent deliveries ${concurrent}; delivered by ${JSON.stringify(share)}`,
    );
    expect(kills).toBe(KILLS);
    expect(report.refused).toEqual([]);
    expect(report.acknowledged.size).toBe(perNode * NODES.length);
    expect(lost).toEqual([]);
    expect(concurrent).toBe(0);
    for (const name of NODES) expect(share[name]).toBeGreaterThan(0);
  });

  it(`hands a dead node's claimed recipients to the others within the lease`, { timeout: 60_000 }, async () => {
    hold = newHold();
    const before = sink.messages.length;
    const setup = setups.get(VICTIM)!;
    const client = transport(setup);
    const queueIds: string[] = [];
    try {
      for (let i = 0; i < 10; i++) {
        const info = await client.sendMail({
          from: 'app@acme.test',
          to: `held${i}@example.net`,
          subject: `hold ${i}`,
          text: 'held at the MX',
        });
        queueIds.push(/queued as (\S+)/.exec(info.response)![1]!);
      }
    } finally {
      client.close();
    }
    // Wait until the victim itself has claimed some of them and is stuck at the MX's DATA.
    const storage = await openStorage({ database: db.url, database_pool: 2 });
    try {
      await waitFor(
        async () => (await storage.nodes.list(Date.now())).find((n) => n.name === VICTIM && n.leased > 0),
        `${VICTIM} holding leases`,
      );
      await kill(serves.get(VICTIM)!);
      serves.delete(VICTIM);
      hold.release();
      hold = undefined;
      const takenOver = async () => {
        const arrived = sink.messages.slice(before).filter((m) => deliveredBy(m) !== VICTIM);
        const ids = new Set(arrived.map((m) => /with ESMTPS?A id (\S+);/.exec(m.raw.toString('latin1', 0, 4000))?.[1]));
        return queueIds.every((id) => ids.has(id));
      };
      await waitFor(takenOver, 'the held messages delivered by the surviving nodes', 30_000);
      const stillLeased = (await storage.nodes.list(Date.now())).find((n) => n.name === VICTIM)?.leased ?? 0;
      expect(stillLeased).toBe(0);
    } finally {
      await storage.close();
    }
    for (const name of NODES.filter((n) => n !== VICTIM)) {
      expect(await kill(serves.get(name)!, 'SIGTERM')).toBe(0);
      serves.delete(name);
    }
  });
});
