/**
 * Nothing that got a 250 is lost, whenever the relay dies: `relay serve` runs as a real process
 * with two submission workers (src/workers), and its primary is killed with SIGKILL about twenty
 * times at random moments (during submission and during delivery) and restarted each time, while several client apps with pooled connections
 * submit a few thousand messages, retrying whatever did not get a 250. Every acknowledged
 * message must reach the sink. Duplicates are counted and reported: a relay duplicate (one
 * queue id delivered twice) can only come from a kill between the remote 250 and our commit;
 * a resubmission duplicate is a client retrying a message whose 250 the kill swallowed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt } from './helpers/cli.js';
import { startDnsServer, type TestDnsServer } from './helpers/dns.js';
import { compare, submitLoad, tallySink } from './helpers/load.js';
import { kill, prepareServe, startServe, type ServeProcess, type ServeSetup } from './helpers/serve.js';
import { startSink, type Sink } from './helpers/sink.js';
import { waitFor } from './helpers/wait.js';

const MESSAGES = 2500;
const KILLS = 20;

let dns: TestDnsServer;
let sink: Sink;
let setup: ServeSetup;
let serve: ServeProcess | undefined;

beforeAll(async () => {
  assertBuilt();
  sink = await startSink({ host: '127.0.0.2' });
  dns = await startDnsServer({
    'example.net': { mx: [{ exchange: 'mx.example.net', priority: 10 }] },
    'mx.example.net': { a: ['127.0.0.2'] },
  });
  setup = await prepareServe({
    workers: 2,
    delivery: { paused: false, dns_servers: [dns.address], smtp_port: sink.port, lease: '2s', retry_schedule: ['500ms'] },
    log: { level: 'error' },
  });
});

/** Set when the test ends, however it ends, so the killer loop never restarts a relay after it. */
let finished = false;

afterAll(async () => {
  finished = true;
  if (serve && serve.child.exitCode === null) await kill(serve);
  await sink?.stop();
  await dns?.stop();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('SIGKILL at any moment', () => {
  it(`loses no acknowledged message over ${KILLS} kills and restarts`, { timeout: 360_000 }, async () => {
    serve = await startServe(setup);
    let kills = 0;
    const killer = (async () => {
      while (kills < KILLS && !finished) {
        await sleep(150 + Math.random() * 600);
        await kill(serve);
        kills++;
        if (!finished) serve = await startServe(setup);
      }
    })();
    const started = Date.now();
    const report = await submitLoad({ port: setup.port, creds: setup.creds, clients: 6, messages: MESSAGES, prefix: 'crash' });
    const submitSeconds = (Date.now() - started) / 1000;
    await killer;

    await waitFor(() => compare(report, tallySink(sink)).lost.length === 0, 'every acknowledged message at the sink', 60_000).catch(
      () => {},
    );
    const { lost, relayDuplicates, resubmissionDuplicates } = compare(report, tallySink(sink));
    console.log(
      `crash test: ${kills} kills survived; ${report.acknowledged.size} of ${MESSAGES} messages acknowledged in ${submitSeconds.toFixed(1)} s ` +
        `(${report.retries} client retries); lost ${lost.length}; duplicates: ${relayDuplicates} relay (remote 250 before our commit), ` +
        `${resubmissionDuplicates} from resubmissions`,
    );
    expect(kills).toBe(KILLS);
    expect(report.refused).toEqual([]);
    expect(report.acknowledged.size).toBe(MESSAGES);
    expect(lost).toEqual([]);

    expect(await kill(serve, 'SIGTERM')).toBe(0);
    serve = undefined;
  });
});

describe('SIGTERM while relay serve is starting', () => {
  it('drains and exits 0 when the signal comes as soon as the listener answers', { timeout: 60_000 }, async () => {
    // The listener accepts connections before startRelay() has returned (the HTTP listener and
    // the delivery loop start after it). The last restart of the test above can be that close
    // to its final SIGTERM when the clients finish before the killer does.
    for (let i = 0; i < 3; i++) {
      serve = await startServe(setup);
      expect(await kill(serve, 'SIGTERM'), `exit status of start ${i + 1} (-1: ended by the signal)`).toBe(0);
      serve = undefined;
    }
  });
});
