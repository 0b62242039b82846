/**
 * A node that starts again under its name takes back its own leases at once: after a SIGKILL in
 * the middle of a delivery, the recipients it had claimed go out within seconds of the restart,
 * not after `delivery.lease` (set to ten minutes here so the difference cannot be missed).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt } from './helpers/cli.js';
import { startDnsServer, type TestDnsServer } from './helpers/dns.js';
import { kill, prepareServe, startServe, transport, type ServeProcess, type ServeSetup } from './helpers/serve.js';
import { startSink, type Sink } from './helpers/sink.js';
import { waitFor } from './helpers/wait.js';

let dns: TestDnsServer;
let sink: Sink;
let setup: ServeSetup;
let serve: ServeProcess | undefined;
/** The first delivery attempt stalls at DATA until the relay making it is dead. */
let stalled: (() => void) | undefined;
let dataSeen = 0;

beforeAll(async () => {
  assertBuilt();
  sink = await startSink({
    host: '127.0.0.2',
    beforeReply: () => {
      dataSeen++;
      return dataSeen === 1 ? new Promise<void>((resolve) => (stalled = resolve)) : Promise.resolve();
    },
    data: () => (dataSeen === 1 ? '451 4.3.0 the relay was killed before this reply' : undefined),
  });
  dns = await startDnsServer({
    'example.net': { mx: [{ exchange: 'mx.example.net', priority: 10 }] },
    'mx.example.net': { a: ['127.0.0.2'] },
  });
  setup = await prepareServe({
    node_name: 'restarting-node',
    delivery: { paused: false, dns_servers: [dns.address], smtp_port: sink.port, lease: '10m', retry_schedule: ['1s'] },
    log: { level: 'error' },
  });
});

afterAll(async () => {
  stalled?.();
  if (serve && serve.child.exitCode === null) await kill(serve);
  await sink?.stop();
  await dns?.stop();
});

describe('restarting under the same node name', () => {
  it('delivers the recipients a killed run had claimed right after the restart', { timeout: 60_000 }, async () => {
    serve = await startServe(setup);
    const client = transport(setup);
    try {
      await client.sendMail({ from: 'app@acme.test', to: 'rcpt@example.net', subject: 'claimed when killed', text: 'x' });
    } finally {
      client.close();
    }
    await waitFor(() => stalled, 'the delivery attempt to reach DATA');
    await kill(serve);
    stalled!();
    expect(sink.messages).toHaveLength(0);

    serve = await startServe(setup);
    // Well inside the ten-minute lease: the restarted node took its claim back.
    await waitFor(() => sink.messages.length === 1, 'the message delivered after the restart', 20_000);
    expect(sink.messages[0]!.rcptTo).toEqual(['rcpt@example.net']);
    expect(await kill(serve, 'SIGTERM')).toBe(0);
    serve = undefined;
  });
});
