/**
 * A relay that delivers to one loopback sink (example.net's MX), with a sender
 * domain and a credential, plus a raw-client session already past AUTH: the setting for tests
 * that push odd bytes in and look at what comes out at the sink.
 */
import { startDnsServer, type TestDnsServer } from './dns.js';
import { addCredential, addSenderDomain, startTestRelay, type TestRelay } from './relay.js';
import type { DestinationStream } from 'pino';
import { startSink, type Sink, type SinkOptions } from './sink.js';
import { RawSmtpClient } from './smtp-client.js';

export interface DeliveringRelay {
  relay: TestRelay;
  sink: Sink;
  dns: TestDnsServer;
  creds: { username: string; password: string };
  /** The DKIM TXT records by name, for dkimVerify's resolver. */
  dkim: Map<string, string>;
  /** A fresh session over implicit TLS, EHLO and AUTH done. */
  session(): Promise<RawSmtpClient>;
  stop(): Promise<void>;
}

export async function startDeliveringRelay(
  overrides: Record<string, unknown> = {},
  options: { destination?: DestinationStream; sink?: Omit<SinkOptions, 'host'> } = {},
): Promise<DeliveringRelay> {
  const sink = await startSink({ ...options.sink, host: '127.0.0.2' });
  const dns = await startDnsServer({
    'example.net': { mx: [{ exchange: 'mx.example.net', priority: 10 }] },
    'mx.example.net': { a: ['127.0.0.2'] },
  });
  const relay = await startTestRelay(
    { ...overrides, delivery: { paused: false, dns_servers: [dns.address], smtp_port: sink.port, ...(overrides.delivery as object) } },
    options,
  );
  const dkim = new Map<string, string>();
  for (const record of await addSenderDomain(relay.storage, 'acme.test'))
    if (record.purpose === 'dkim') dkim.set(record.name, record.value);
  const creds = await addCredential(relay.storage, 'app', ['acme.test']);
  return {
    relay,
    sink,
    dns,
    creds,
    dkim,
    async session() {
      const { client } = await RawSmtpClient.connect(relay.ports.smtps!, { implicitTls: true });
      await client.command('EHLO client.test');
      const auth = await client.authPlain(creds.username, creds.password);
      if (auth.code !== 235) throw new Error(`AUTH failed: ${auth.code} ${auth.text}`);
      return client;
    },
    async stop() {
      await relay.stop();
      await sink.stop();
      await dns.stop();
    },
  };
}
