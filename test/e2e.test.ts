/**
 * The README path, black-box: the operator sets up a domain and a credential with the CLI,
 * publishes the printed records in DNS, runs `relay serve` as a real process, and an app's
 * mail arrives at the recipients' MX hosts DKIM-signed; events show every recipient's fate,
 * and a relay killed with SIGKILL resumes its queue on restart.
 */
import { execFileSync } from 'node:child_process';
import { promises as dns } from 'node:dns';
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import path from 'node:path';
import nodemailer, { type SendMailOptions } from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, runCli, spawnCli, type CliResult } from './helpers/cli.js';
import { startDnsServer, type TestDnsServer } from './helpers/dns.js';
import { writeTestConfig } from './helpers/relay.js';
import { freePort } from './helpers/serve.js';
import { startSinks, type Sink } from './helpers/sink.js';
import { waitFor } from './helpers/wait.js';

const require = createRequire(import.meta.url);
const { dkimVerify } = require('mailauth/lib/dkim/verify') as {
  dkimVerify: (
    msg: Buffer,
    opts: { resolver: (name: string, type: string) => Promise<unknown> },
  ) => Promise<{ results: { status: { result: string }; signingDomain: string }[] }>;
};

let dnsServer: TestDnsServer;
let sinks: Sink[];
let configFile: string;
let dir: string;
let ports: { smtps: number; submission: number };
let credential: { username: string; password: string };
let serve: ReturnType<typeof spawnCli> | undefined;
/** Recipients the "flaky" sink defers until this is false. */
let deferring = true;

const cli = (...args: string[]) => runCli(['--config', configFile, ...args], { cwd: dir });

function json<T>(result: CliResult): T {
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  return JSON.parse(result.stdout) as T;
}

async function startServe() {
  serve = spawnCli(['--config', configFile, 'serve'], { cwd: dir });
  await waitFor(
    () =>
      new Promise<boolean>((resolve) => {
        const socket = net.connect(ports.submission, '127.0.0.1', () => (socket.destroy(), resolve(true)));
        socket.on('error', () => resolve(false));
      }),
    `relay serve to listen (output: ${serve.output()})`,
  );
}

function send(listener: 'smtps' | 'submission', mail: SendMailOptions) {
  return nodemailer
    .createTransport({
      host: '127.0.0.1',
      port: ports[listener],
      secure: listener === 'smtps',
      requireTLS: listener === 'submission',
      auth: { user: credential.username, pass: credential.password },
      tls: { rejectUnauthorized: false },
    })
    .sendMail(mail);
}

beforeAll(async () => {
  assertBuilt();
  dnsServer = await startDnsServer({
    'example.net': { mx: [{ exchange: 'mx.example.net', priority: 10 }] },
    'mx.example.net': { a: ['127.0.0.2'] },
    'example.org': { mx: [{ exchange: 'mx.example.org', priority: 10 }] },
    'mx.example.org': { a: ['127.0.0.3'] },
  });
  sinks = await startSinks([
    { host: '127.0.0.2', starttls: true },
    {
      host: '127.0.0.3',
      rcpt: (address) => (address.startsWith('later') && deferring ? '451 4.7.1 greylisted, try again later' : undefined),
    },
  ]);
  ports = { smtps: await freePort(), submission: await freePort() };
  configFile = writeTestConfig({
    listeners: [
      { name: 'smtps', host: '127.0.0.1', port: ports.smtps, tls: 'implicit' },
      { name: 'submission', host: '127.0.0.1', port: ports.submission, tls: 'starttls' },
    ],
    delivery: { paused: false, dns_servers: [dnsServer.address], smtp_port: sinks[0]!.port },
  });
  dir = path.dirname(configFile);
});

afterAll(async () => {
  serve?.child.kill('SIGKILL');
  await Promise.all(sinks?.map((s) => s.stop()) ?? []);
  await dnsServer?.stop();
});

describe('from a clean install to delivered mail', { timeout: 60_000 }, () => {
  it('sets up a domain from the printed DNS records and a credential, with the CLI', async () => {
    const added = json<{ domain: string; selector: string; records: { type: string; name: string; value: string; purpose: string }[] }>(
      await cli('domain', 'add', 'acme.test', '--json'),
    );
    expect(added.records.map((r) => r.purpose).sort()).toEqual(['dkim', 'dmarc', 'spf', 'verification']);
    const unpublished = await cli('domain', 'verify', 'acme.test', '--json');
    expect(unpublished.code).toBe(1);
    for (const record of added.records) dnsServer.setZone(record.name, { ...dnsServer.records.get(record.name), txt: [record.value] });
    const verified = json<{ verified: boolean; checks: Record<string, { status: string }> }>(
      await cli('domain', 'verify', 'acme.test', '--json'),
    );
    expect(verified.verified).toBe(true);
    expect(Object.values(verified.checks).map((c) => c.status)).toEqual(['found', 'found', 'found', 'found']);
    credential = json(await cli('credential', 'add', 'billing-app', '--domain', 'acme.test', '--json'));
    expect(credential.password.length).toBeGreaterThanOrEqual(16);
  });

  it("delivers an app's mail to each recipient domain, signed so that the published key verifies it", async () => {
    await startServe();
    const info = await send('submission', {
      from: 'Billing <billing@acme.test>',
      to: ['ann@example.net', 'bob@example.net', 'cat@example.org'],
      subject: 'Your invoice',
      text: 'Hello,\nyour invoice is attached.\n',
    });
    const queueId = /queued as (\S+)/.exec(info.response)![1]!;
    const [primary, secondary] = sinks as [Sink, Sink];
    const atNet = await waitFor(() => primary.messages.find((m) => m.raw.includes('Your invoice')), 'delivery to example.net');
    const atOrg = await waitFor(() => secondary.messages.find((m) => m.raw.includes('Your invoice')), 'delivery to example.org');
    // One transaction per recipient domain, several RCPTs in it; STARTTLS where offered.
    expect(atNet.rcptTo.sort()).toEqual(['ann@example.net', 'bob@example.net']);
    expect(atNet.secure).toBe(true);
    expect(atOrg.rcptTo).toEqual(['cat@example.org']);
    expect(atNet.mailFrom).toBe('billing@acme.test');

    const resolver = new dns.Resolver();
    resolver.setServers([dnsServer.address]);
    const { results } = await dkimVerify(atNet.raw, { resolver: (name, type) => resolver.resolve(name, type as 'TXT') });
    expect(results[0]!.status.result).toBe('pass');
    expect(results[0]!.signingDomain).toBe('acme.test');
    expect(/[^\r]\n|\r[^\n]/.test(atNet.raw.toString('latin1'))).toBe(false);

    const delivered = await waitFor(async () => {
      const events = json<{ queue_id: string; recipient: string; status: string; smtp_code: number; response: string }[]>(
        await cli('events', '--json', '--status', 'delivered'),
      );
      return events.length === 3 ? events : undefined;
    }, 'three delivered events');
    expect(delivered.every((e) => e.queue_id === queueId && e.smtp_code === 250 && /^250 /.test(e.response))).toBe(true);
  });

  it('accepts mail from curl over implicit TLS', async () => {
    let hasCurl = true;
    try {
      execFileSync('curl', ['--version']);
    } catch {
      hasCurl = false;
    }
    if (!hasCurl) return;
    const file = path.join(dir, 'curl-message.txt');
    writeFileSync(file, 'From: billing@acme.test\r\nTo: dan@example.net\r\nSubject: from curl\r\n\r\nsent by curl\r\n');
    execFileSync('curl', [
      '--silent',
      '--show-error',
      '--insecure',
      '--ssl-reqd',
      '--url',
      `smtps://127.0.0.1:${ports.smtps}`,
      '--user',
      `${credential.username}:${credential.password}`,
      '--mail-from',
      'billing@acme.test',
      '--mail-rcpt',
      'dan@example.net',
      '--upload-file',
      file,
    ]);
    await waitFor(() => sinks[0]!.messages.find((m) => m.raw.includes('sent by curl')), 'the curl message at the MX');
  });

  it('keeps a deferred message across SIGKILL and delivers it exactly once after restart', async () => {
    await send('smtps', { from: 'billing@acme.test', to: 'later@example.org', subject: 'held', text: 'held mail' });
    await waitFor(async () => {
      const events = json<{ recipient: string }[]>(
        await cli('events', '--json', '--status', 'deferred', '--recipient', 'later@example.org'),
      );
      return events.length > 0;
    }, 'a deferred event');
    const queue = json<unknown[]>(await cli('queue', 'list', '--json'));
    expect(queue).toHaveLength(1);

    serve!.child.kill('SIGKILL');
    await serve!.exited;
    deferring = false;
    await startServe();
    const held = () => sinks[1]!.messages.filter((m) => m.raw.includes('held mail'));
    await waitFor(() => held().length === 1, 'the held message after restart');
    await waitFor(async () => json<unknown[]>(await cli('queue', 'list', '--json')).length === 0, 'an empty queue');
    expect(held()).toHaveLength(1);
    const stats = json<{ by_status: Record<string, number> }>(await cli('stats', '--json'));
    expect(stats.by_status.delivered).toBe(5);
  });

  it('stops cleanly on SIGTERM', async () => {
    serve!.child.kill('SIGTERM');
    expect(await serve!.exited).toBe(0);
    serve = undefined;
  });
});
