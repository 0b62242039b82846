/**
 * Starts a real relay in-process on loopback with a config file in a fresh temp directory,
 * plus shortcuts to set up what an operator would with the CLI (a verified domain, a credential).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { loadConfig } from '../../src/config/load.js';
import type { DestinationStream } from 'pino';
import { createLogger } from '../../src/log.js';
import { startRelay, type RunningRelay } from '../../src/relay.js';
import { dnsRecords, newVerificationToken } from '../../src/domains/records.js';
import { generateDkimKey, type DkimAlgorithm } from '../../src/signing/dkim.js';
import { hashPassword } from '../../src/submission/password.js';
import type { MessageQueue, Storage } from '../../src/queue/storage.js';
import { joinParts } from '../../src/envelope/header.js';
import type { Clock } from '../../src/envelope/time.js';

export type ConfigOverrides = Record<string, unknown>;

function merge(base: Record<string, unknown>, extra: Record<string, unknown>): Record<string, unknown> {
  const out = { ...base };
  for (const [key, value] of Object.entries(extra)) {
    const current = out[key];
    out[key] =
      value && typeof value === 'object' && !Array.isArray(value) && current && typeof current === 'object' && !Array.isArray(current)
        ? merge(current as Record<string, unknown>, value as Record<string, unknown>)
        : value;
  }
  return out;
}

/** Writes relay.yaml into a new temp dir (loopback listeners on free ports) and returns its path. */
export function writeTestConfig(overrides: ConfigOverrides = {}, dir = mkdtempSync(path.join(tmpdir(), 'relay-test-'))): string {
  const base = {
    hostname: 'relay.test',
    database: './relay.db',
    listeners: [
      { name: 'smtps', host: '127.0.0.1', port: 0, tls: 'implicit' },
      { name: 'submission', host: '127.0.0.1', port: 0, tls: 'starttls' },
    ],
    http: { host: '127.0.0.1', port: 0 },
    delivery: { paused: true, retry_schedule: ['1s'], poll_interval: '100ms', connect_timeout: '2s', dns_timeout: '1s' },
    log: { level: 'silent' },
  };
  const file = path.join(dir, 'relay.yaml');
  writeFileSync(file, YAML.stringify(merge(base, overrides)));
  return file;
}

export interface TestRelay extends RunningRelay {
  configFile: string;
  dir: string;
}

/** `destination` captures the log lines (at config.log.level) instead of printing them. */
export async function startTestRelay(
  overrides: ConfigOverrides = {},
  options: { destination?: DestinationStream; clock?: Clock } = {},
): Promise<TestRelay> {
  const configFile = writeTestConfig(overrides);
  const config = loadConfig(configFile);
  const logger = createLogger(config.log.level, { redactRecipients: config.log.redact_recipients, destination: options.destination });
  const relay = await startRelay(config, { logger, clock: options.clock });
  return { ...relay, configFile, dir: path.dirname(configFile) };
}

/** What `relay domain add` + a passing `relay domain verify` leave in storage. Returns the DNS records to publish. */
export async function addSenderDomain(
  storage: Pick<Storage, 'domains'>,
  name: string,
  options: { verified?: boolean; algorithm?: DkimAlgorithm; selector?: string; hostname?: string } = {},
) {
  const key = generateDkimKey(options.algorithm ?? 'rsa');
  const domain = {
    name,
    selector: options.selector ?? 'relay',
    algorithm: options.algorithm ?? 'rsa',
    privateKeyPem: key.privateKeyPem,
    publicKey: key.publicKey,
    verificationToken: newVerificationToken(),
  } as const;
  await storage.domains.add(domain);
  if (options.verified ?? true) await storage.domains.setVerification(name, true, {});
  return dnsRecords(domain, options.hostname ?? 'relay.test');
}

/** What `relay credential add` does; returns the password it would print once. */
export async function addCredential(
  storage: Pick<Storage, 'credentials'>,
  name: string,
  domains: string[],
): Promise<{ username: string; password: string }> {
  const password = `pw-${name}-${Math.random().toString(36).slice(2)}`;
  await storage.credentials.add({ name, username: name, passwordHash: hashPassword(password), domains });
  return { username: name, password };
}

/** The stored message as one Buffer (the queue keeps it in pieces). */
export async function storedBody(queue: Pick<MessageQueue, 'body'>, queueId: string): Promise<Buffer | undefined> {
  const parts = await queue.body(queueId);
  return parts && joinParts(parts);
}
