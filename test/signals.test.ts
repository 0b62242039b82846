/**
 * Signals to a real `relay serve` process: SIGTERM drains (new sessions get 421 4.3.2, the
 * transaction in progress and the delivery in flight finish, exit 0); SIGHUP reloads the
 * config and a renewed certificate without a restart; after SIGKILL in the middle of a
 * delivery, the expired lease brings the message back and it is delivered after restart. Each
 * runs with the listeners in the primary and with two submission workers.
 */
import { X509Certificate } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import Database from 'better-sqlite3';
import selfsigned from 'selfsigned';
import YAML from 'yaml';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt } from './helpers/cli.js';
import { startDnsServer, type TestDnsServer } from './helpers/dns.js';
import { kill, prepareServe, startServe, transport, type ServeProcess, type ServeSetup } from './helpers/serve.js';
import { startSink, type ReceivedMessage, type Sink } from './helpers/sink.js';
import { RawSmtpClient } from './helpers/smtp-client.js';
import { waitFor } from './helpers/wait.js';
import { workerCount } from '../src/workers/messages.js';

let dns: TestDnsServer;
let sink: Sink;
/** What the sink does at the end of DATA before replying; set per test. */
let beforeReply: (message: ReceivedMessage) => Promise<void> = async () => {};
let serve: ServeProcess | undefined;

beforeAll(async () => {
  assertBuilt();
  sink = await startSink({ host: '127.0.0.2', beforeReply: (m) => beforeReply(m) });
  dns = await startDnsServer({
    'example.net': { mx: [{ exchange: 'mx.example.net', priority: 10 }] },
    'mx.example.net': { a: ['127.0.0.2'] },
  });
});

afterEach(async () => {
  if (serve && serve.child.exitCode === null) await kill(serve);
  serve = undefined;
  beforeReply = async () => {};
  // Tests run once per worker count with the same subjects: each counts only its own deliveries.
  sink.messages.length = 0;
});

afterAll(async () => {
  await sink?.stop();
  await dns?.stop();
});

const delivering = (extra: Record<string, unknown> = {}) => ({ paused: false, dns_servers: [dns.address], smtp_port: sink.port, ...extra });

function events(setup: ServeSetup, status: string): { queue_id: string; recipient: string }[] {
  const db = new Database(setup.database, { readonly: true });
  try {
    return db.prepare(`SELECT queue_id, recipient FROM events WHERE status = ?`).all(status) as { queue_id: string; recipient: string }[];
  } finally {
    db.close();
  }
}

const send = (setup: ServeSetup, subject: string, to = 'ann@example.net') =>
  transport(setup).sendMail({ from: 'app@acme.test', to, subject, text: subject });

async function authenticated(setup: ServeSetup): Promise<RawSmtpClient> {
  const { client } = await RawSmtpClient.connect(setup.port, { implicitTls: true });
  await client.command('EHLO client.test');
  expect((await client.authPlain(setup.creds.username, setup.creds.password)).code).toBe(235);
  return client;
}

// workers: 1 is the relay in one process; 2 puts the listeners in two submission workers (src/workers).
describe.each([1, 2])('workers: %i', (workers) => {
  describe('SIGTERM', { timeout: 150_000 }, () => {
    it('refuses new sessions with 421 4.3.2, finishes the transaction and the delivery in progress, then exits 0', async () => {
      const setup = await prepareServe({ workers, delivery: delivering(), log: { level: 'warn' } });
      serve = await startServe(setup);
      let release!: () => void;
      const released = new Promise<void>((resolve) => (release = resolve));
      let inData!: () => void;
      const deliveryInFlight = new Promise<void>((resolve) => (inData = resolve));
      beforeReply = async () => {
        inData();
        await released;
      };
      await send(setup, 'in flight');
      await deliveryInFlight;

      const client = await authenticated(setup);
      await client.command('MAIL FROM:<app@acme.test>');
      await client.command('RCPT TO:<bob@example.net>');
      expect((await client.command('DATA')).code).toBe(354);
      client.write('From: app@acme.test\r\nSubject: mid-transaction\r\n\r\nfirst half, ');

      serve.child.kill('SIGTERM');
      // A new session during the drain is answered, not refused at connect.
      const late = await waitFor(
        async () => {
          const { client: other, greeting } = await RawSmtpClient.connect(setup.port, { implicitTls: true });
          other.close();
          return greeting.code === 421 ? greeting : undefined;
        },
        'a 421 greeting during the drain',
        5000,
      );
      expect(late.text).toMatch(/^4\.3\.2 /);

      client.write('second half\r\n.\r\n');
      const accepted = await client.read();
      expect(accepted.code).toBe(250);
      // The session is closed right after its transaction.
      expect((await client.read()).code).toBe(421);
      client.close();

      release();
      expect(await serve.exited).toBe(0);
      expect(sink.messages.some((m) => m.raw.includes('Subject: in flight'))).toBe(true);
      expect(events(setup, 'delivered').map((e) => e.recipient)).toContain('ann@example.net');
      const queued = events(setup, 'queued').map((e) => e.recipient);
      expect(queued).toContain('bob@example.net');
    });
  });

  describe('SIGHUP', { timeout: 150_000 }, () => {
    it('reloads the config and serves a renewed certificate without a restart', async () => {
      const setup = await prepareServe({ workers, log: { level: 'warn' } });
      serve = await startServe(setup);
      const fingerprint = () =>
        new Promise<string>((resolve, reject) => {
          // The renewed pair is the RSA one (tls: self_signed serves an ECDSA pair beside it).
          const socket = tls.connect(
            { port: setup.port, host: '127.0.0.1', rejectUnauthorized: false, sigalgs: 'rsa_pss_rsae_sha256' },
            () => {
              resolve(socket.getPeerCertificate().fingerprint256);
              socket.destroy();
            },
          );
          socket.on('error', reject);
        });
      const before = await fingerprint();

      const renewed = await selfsigned.generate([{ name: 'commonName', value: 'relay.test' }], { keySize: 2048, algorithm: 'sha256' });
      writeFileSync(path.join(setup.dir, 'self-signed.crt'), renewed.cert);
      writeFileSync(path.join(setup.dir, 'self-signed.key'), renewed.private);
      const config = YAML.parse(readFileSync(setup.configFile, 'utf8')) as Record<string, Record<string, unknown>>;
      config.limits = { ...config.limits, max_recipients: 2 };
      writeFileSync(setup.configFile, YAML.stringify(config));
      const pid = serve.child.pid;
      serve.child.kill('SIGHUP');

      const expected = new X509Certificate(renewed.cert).fingerprint256;
      // Two in a row: with workers, connections go to each in turn, and every one must have reloaded.
      await waitFor(async () => (await fingerprint()) === expected && (await fingerprint()) === expected, 'the renewed certificate');
      expect(expected).not.toBe(before);
      const client = await authenticated(setup);
      await client.command('MAIL FROM:<app@acme.test>');
      await client.command('RCPT TO:<a@example.net>');
      await client.command('RCPT TO:<b@example.net>');
      const third = await client.command('RCPT TO:<c@example.net>');
      expect([third.code, third.text.slice(0, 5)]).toEqual([452, '4.5.3']);
      client.close();
      expect(serve.child.pid).toBe(pid);
      expect(serve.child.exitCode).toBeNull();
    });
  });

  describe('SIGKILL in the middle of a delivery', { timeout: 150_000 }, () => {
    it('delivers the message after restart once the lease of the interrupted attempt runs out', async () => {
      const setup = await prepareServe({ workers, delivery: delivering({ lease: '1s' }), log: { level: 'warn' } });
      serve = await startServe(setup);
      let stalled!: () => void;
      const inData = new Promise<void>((resolve) => (stalled = resolve));
      // The first attempt hangs at the end of DATA (the relay dies there); later ones are answered.
      let attempts = 0;
      beforeReply = (message) => {
        if (!message.raw.includes('Subject: interrupted') || attempts++ > 0) return Promise.resolve();
        stalled();
        return new Promise(() => {});
      };
      await send(setup, 'interrupted', 'carl@example.net');
      await inData;
      await kill(serve);
      expect(events(setup, 'delivered')).toEqual([]);

      serve = await startServe(setup);
      await waitFor(() => events(setup, 'delivered').some((e) => e.recipient === 'carl@example.net'), 'delivery after restart', 15_000);
      expect(sink.messages.filter((m) => m.raw.includes('Subject: interrupted'))).toHaveLength(1);
      expect(attempts).toBe(2);
    });
  });
});

/** The relay's child processes (its submission workers), from /proc. */
function childrenOf(pid: number): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .filter((name) => {
      try {
        const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
        return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid;
      } catch {
        return false;
      }
    })
    .map(Number);
}

describe('a submission worker that dies', { timeout: 150_000 }, () => {
  it('is replaced, and the relay takes mail after', async () => {
    const setup = await prepareServe({ workers: 2, log: { level: 'warn' } });
    serve = await startServe(setup);
    const workers = await waitFor(() => {
      const found = childrenOf(serve!.child.pid!);
      return found.length === 2 ? found : undefined;
    }, 'two workers');
    process.kill(workers[0]!, 'SIGKILL');
    const replaced = await waitFor(
      () => {
        const found = childrenOf(serve!.child.pid!);
        return found.length === 2 && !found.includes(workers[0]!) ? found : undefined;
      },
      'a new worker in place of the dead one',
      60_000,
    );
    expect(replaced).toContain(workers[1]);
    for (const n of [1, 2, 3, 4]) await send(setup, `after the restart ${n}`);
    expect(events(setup, 'queued')).toHaveLength(4);
    expect(serve.child.exitCode).toBeNull();
  });
});

describe('workers: auto', () => {
  it('leaves one core to the primary, and is one process on two cores', () => {
    expect(workerCount('auto', 2)).toBe(1);
    expect(workerCount('auto', 1)).toBe(1);
    expect(workerCount('auto', 8)).toBe(7);
    expect(workerCount(3, 2)).toBe(3);
  });
});
