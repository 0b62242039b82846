/**
 * The benchmark's surroundings: the in-process DNS server (the recipients' domains point at
 * the sink), the sink, one shared listener certificate, and a fresh relay directory per
 * scenario with its config, a verified sender domain (RSA-2048 DKIM) and a credential,
 * set up in the database the way `relay domain add/verify` and `relay credential add` do.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { openStorage } from '../../src/queue/open.js';
import { openSqlite } from '../../src/queue/sqlite/index.js';
import { createSelfSignedCertificate } from '../../src/submission/tls.js';
import { startDnsServer, type TestDnsServer } from '../helpers/dns.js';
import { addCredential, addSenderDomain } from '../helpers/relay.js';
import { RECIPIENT_DOMAINS, SENDER_DOMAIN } from './messages.js';
import { startBenchSink, type BenchSink } from './sink.js';

export interface BenchEnv {
  root: string;
  dns: TestDnsServer;
  sink: BenchSink;
  /** An ECDSA P-256 and an RSA-2048 pair, as `tls: self_signed` makes. */
  cert: { cert: string; key: string }[];
  stop(): Promise<void>;
}

export interface RelayDir {
  configFile: string;
  user: string;
  pass: string;
  /** Rewrites the config with delivery paused or running (the database stays). */
  setPaused(paused: boolean): void;
}

export async function startBenchEnv(): Promise<BenchEnv> {
  const root = mkdtempSync(path.join(tmpdir(), 'relay-bench-'));
  const sink = await startBenchSink();
  const zone = Object.fromEntries([
    ...RECIPIENT_DOMAINS.map((d) => [d, { mx: [{ exchange: 'mx.sink.test', priority: 10 }] }]),
    ['mx.sink.test', { a: ['127.0.0.1'] }],
  ]);
  const dns = await startDnsServer(zone);
  const cert = (['ecdsa', 'rsa'] as const).map((algorithm) => ({
    cert: path.join(root, `certs/relay-${algorithm}.crt`),
    key: path.join(root, `certs/relay-${algorithm}.key`),
    algorithm,
  }));
  for (const pair of cert) await createSelfSignedCertificate(pair, 'relay.bench', pair.algorithm);
  return {
    root,
    dns,
    sink,
    cert: cert.map(({ cert, key }) => ({ cert, key })),
    async stop() {
      await Promise.all([sink.stop(), dns.stop()]);
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/** Where a relay keeps its queue: its own SQLite file, or a PostgreSQL database (shared by several nodes). */
export type BenchDatabase = { kind: 'sqlite' } | { kind: 'postgres'; url: string; node?: string; creds?: { user: string; pass: string } };

/**
 * A new relay directory: config (production-like: info logs, fsync'd queue), domain, credential.
 * A PostgreSQL database is set up once: later nodes on it pass the credential they share.
 */
export async function newRelayDir(
  env: BenchEnv,
  name: string,
  paused: boolean,
  db: BenchDatabase = { kind: 'sqlite' },
  workers: number | 'auto' = 'auto',
): Promise<RelayDir> {
  const dir = mkdtempSync(path.join(env.root, `${name}-`));
  const configFile = path.join(dir, 'relay.yaml');
  const write = (paused: boolean) =>
    writeFileSync(
      configFile,
      YAML.stringify({
        hostname: 'relay.bench',
        database: db.kind === 'sqlite' ? './relay.db' : db.url,
        ...(db.kind === 'postgres' && db.node ? { node_name: db.node } : {}),
        tls: env.cert,
        workers,
        listeners: [
          { name: 'smtps', host: '127.0.0.1', port: 0, tls: 'implicit' },
          { name: 'submission', host: '127.0.0.1', port: 0, tls: 'starttls' },
        ],
        // Several nodes run side by side in the nodes scenario.
        http: { host: '127.0.0.1', port: 0 },
        delivery: { dns_servers: [env.dns.address], smtp_port: env.sink.port, paused },
        log: { level: 'info' },
      }),
    );
  write(paused);
  if (db.kind === 'postgres' && db.creds) return { configFile, ...db.creds, setPaused: write };
  const storage =
    db.kind === 'sqlite' ? await openSqlite(path.join(dir, 'relay.db')) : await openStorage({ database: db.url, database_pool: 2 });
  try {
    await addSenderDomain(storage, SENDER_DOMAIN, { algorithm: 'rsa' });
    const { username, password } = await addCredential(storage, 'bench-app', [SENDER_DOMAIN]);
    return { configFile, user: username, pass: password, setPaused: write };
  } finally {
    await storage.close();
  }
}
