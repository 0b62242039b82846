/**
 * The shape of relay.yaml, validated with zod. Durations are written as text ("5m") and
 * come out as milliseconds; relative paths are resolved against the config file by load.ts.
 */
import { z } from 'zod';
import { parseDuration } from './duration.js';

/** A duration such as `30s`, `5m`, `7d`, in milliseconds. */
export const duration = z.string().transform((text, ctx) => {
  try {
    return parseDuration(text);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
    return z.NEVER;
  }
});

const hostPort = z.string().regex(/^[^\s]+$/, 'expected "host" or "host:port"');

const listener = z
  .strictObject({
    name: z.string().min(1),
    host: z.string().default('0.0.0.0'),
    port: z.number().int().min(0).max(65535),
    tls: z.enum(['implicit', 'starttls']),
    /** `submission` (AUTH, the apps' door) or `inbound` (port 25: bounces, feedback reports and unsubscribes for the return-path domain). */
    kind: z.enum(['submission', 'inbound']).default('submission'),
  })
  .refine((l) => l.kind !== 'inbound' || l.tls === 'starttls', {
    message: 'an inbound listener offers STARTTLS: set tls: starttls',
    path: ['tls'],
  });

const certificatePair = z.strictObject({ cert: z.string().min(1), key: z.string().min(1) });

export const configSchema = z.strictObject({
  hostname: z.string().min(1).default('localhost'),
  /** A SQLite file path, or a postgres:// URL that several nodes share. */
  database: z.string().min(1).default('./data/relay.db'),
  /** PostgreSQL connections per node. */
  database_pool: z.number().int().min(2).max(200).default(10),
  /** This node's name among the nodes sharing a database (default: the host name); unique. */
  node_name: z
    .string()
    .regex(/^[A-Za-z0-9._-]{1,64}$/, 'letters, digits, dot, dash and underscore, at most 64')
    .optional(),
  retention: z
    .strictObject({
      /** Events older than this are purged. */
      events: duration.prefault('30d'),
      /** Messages whose recipients are all final are purged this long after they were received. */
      messages: duration.prefault('30d'),
    })
    .prefault({}),
  signing: z
    .strictObject({
      /** How long a replaced DKIM key stays (its record published) after the new one signs, for mail in flight and re-verification. */
      retire_after: duration.prefault('7d'),
      /** How often a running relay looks up keys rotated with --auto, to activate them once published. */
      key_check_interval: duration.prefault('10m'),
    })
    .prefault({}),
  /**
   * PEM files for the listeners, or a list of them (say an ECDSA and an RSA certificate: each
   * client gets the first its signature algorithms accept), or `self_signed`: an ECDSA P-256
   * and an RSA pair generated once next to the database.
   */
  tls: z
    .union([z.literal('self_signed'), certificatePair, z.array(certificatePair).min(1)], {
      error: 'expected self_signed, { cert: FILE, key: FILE } or a list of them',
    })
    .default('self_signed'),
  /**
   * Processes serving the submission listeners under `relay serve`: `auto` is one per core but
   * one (so one process on two cores), 1 keeps everything in one process. Delivery, the HTTP
   * API and the scheduler stay in the primary.
   */
  workers: z.union([z.literal('auto'), z.number().int().min(1).max(256)]).default('auto'),
  listeners: z
    .array(listener)
    .min(1)
    .default([
      { name: 'smtps', host: '0.0.0.0', port: 465, tls: 'implicit', kind: 'submission' },
      { name: 'submission', host: '0.0.0.0', port: 587, tls: 'starttls', kind: 'submission' },
    ]),
  limits: z
    .strictObject({
      max_message_bytes: z.number().int().positive().default(26_214_400),
      max_recipients: z.number().int().positive().default(100),
      /** Connections at once over all listeners, and from one IP, counted from TCP accept; past either, 421 4.7.0 at connect (on implicit TLS, closed at once). */
      max_clients: z.number().int().positive().default(1000),
      max_clients_per_ip: z.number().int().positive().default(50),
      /** An implicit-TLS connection must complete its handshake within this, or it is closed. */
      tls_handshake_timeout: duration.prefault('10s'),
      /** No byte from the client for this long closes the session (421 4.4.2). */
      idle_timeout: duration.prefault('1m'),
      /** Each step (a command, or a whole message after DATA) must complete within this, so a client trickling bytes cannot hold a slot. */
      command_timeout: duration.prefault('5m'),
      /** Longest command line accepted; a longer one closes the session. */
      max_line_length: z.number().int().min(512).default(4096),
      /** Commands allowed before a successful AUTH. */
      max_unauthenticated_commands: z.number().int().positive().default(10),
      /** Failed AUTH attempts in one connection before it is closed (421 4.7.0). */
      auth_failures_per_connection: z.number().int().positive().default(3),
      /**
       * Failed AUTH attempts within auth_failure_window before AUTH is refused (454 4.7.0) for
       * auth_lockout: from one IP; for one username from one IP; for one username from anywhere.
       */
      auth_failures_per_ip: z.number().int().positive().default(10),
      auth_failures_per_user: z.number().int().positive().default(10),
      auth_failures_per_user_total: z.number().int().positive().default(100),
      auth_failure_window: duration.prefault('10m'),
      auth_lockout: duration.prefault('10m'),
      /** A repeated Message-ID (same envelope) or Idempotency-Key from one credential within this window is not queued again. */
      idempotency_window: duration.prefault('24h'),
    })
    .prefault({}),
  delivery: z
    .strictObject({
      dns_servers: z.array(hostPort).optional(),
      smtp_port: z.number().int().min(1).max(65535).default(25),
      /**
       * Outbound TLS: opportunistic (encrypt when offered), required (encrypt), verify (a certificate
       * valid for the MX name), dane (DANE-authenticated), none. Recipient domains' MTA-STS and
       * DANE policies apply on top, except with none.
       */
      tls: z.enum(['opportunistic', 'required', 'verify', 'dane', 'none']).default('opportunistic'),
      /** A PEM file of CAs trusted beside the system's, for MTA-STS policy fetches and MX certificates. */
      tls_ca_file: z.string().min(1).optional(),
      /** Send daily TLS-RPT reports (RFC 8460) to the recipient domains that ask for them. */
      tls_reports: z.boolean().default(true),
      retry_schedule: z.array(duration).min(1).prefault(['5m', '10m', '30m', '1h', '2h', '4h']),
      max_queue_age: duration.prefault('5d'),
      concurrency: z.number().int().positive().default(64),
      per_domain_concurrency: z.number().int().positive().default(8),
      connect_timeout: duration.prefault('30s'),
      dns_timeout: duration.prefault('5s'),
      /** How often the delivery loop looks for due work when nothing wakes it. */
      poll_interval: duration.prefault('1s'),
      /** How long an idle outbound connection is kept for reuse. */
      idle_timeout: duration.prefault('10s'),
      /**
       * A claim on recipients lasts this long unless its node's heartbeat renews it, so a dead
       * node's recipients are taken over by another node within it.
       */
      lease: duration.prefault('60s'),
      paused: z.boolean().default(false),
    })
    .prefault({}),
  bounces: z
    .strictObject({
      notify_sender: z.boolean().default(false),
      /** Classification rules; the packaged config/bounce-rules.yaml when absent. */
      rules: z.string().optional(),
      /** When set, deliveries leave with a signed VERP return path at this domain (b+TOKEN@domain), which the inbound listener takes back. */
      return_path_domain: z
        .string()
        .regex(/^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/i, 'expected a domain name')
        .transform((d) => d.toLowerCase())
        .optional(),
      /** Addresses registered with mailbox providers' feedback loops; the inbound listener takes ARF reports sent to them. */
      feedback_addresses: z.array(z.email().transform((a) => a.toLowerCase())).default([]),
      /** The inbound listener's own limits. */
      inbound: z
        .strictObject({
          max_message_bytes: z.number().int().positive().default(10_485_760),
          /** Messages accepted from one IP per minute; past it, 450 4.7.1. */
          messages_per_ip_per_minute: z.number().int().positive().default(60),
        })
        .prefault({}),
    })
    .prefault({}),
  shaping: z
    .strictObject({
      /** Your own traffic shaping rules, laid over the packaged config/shaping.yaml. */
      rules: z.string().optional(),
      /** Start from the packaged rules; false uses only your own file. */
      packaged_rules: z.boolean().default(true),
    })
    .prefault({}),
  http: z
    .strictObject({
      host: z.string().default('127.0.0.1'),
      port: z.number().int().min(0).max(65535).default(8025),
      /** Bearer token for the admin endpoints and the dashboard; they answer 403 when unset. */
      admin_token: z.string().min(16, 'admin_token must be at least 16 characters').optional(),
      /** Bearer token /metrics requires when set; open (keep the listener private) when unset. */
      metrics_token: z.string().min(16, 'metrics_token must be at least 16 characters').optional(),
      /** Recipient domains with their own `domain` label on /metrics (the busiest); the rest are counted as "other". */
      metrics_domains: z.number().int().min(0).default(20),
      /** How recipients reach this listener from outside (https://relay.example.com): the base of one-click unsubscribe links. */
      public_url: z
        .url({ protocol: /^https?$/ })
        .transform((u) => u.replace(/\/+$/, ''))
        .optional(),
    })
    .prefault({}),
  webhooks: z
    .strictObject({
      /** Delays between attempts to deliver one event to one endpoint; the last repeats until it succeeds. */
      retry_schedule: z.array(duration).min(1).prefault(['10s', '1m', '5m', '30m', '2h']),
      /** How long one POST may take before it counts as failed. */
      timeout: duration.prefault('10s'),
      poll_interval: duration.prefault('1s'),
    })
    .prefault({}),
  secrets: z
    .strictObject({
      /**
       * A file holding 32 random bytes (base64 or hex): DKIM private keys and webhook secrets are
       * then stored encrypted with it (AES-256-GCM). RELAY_SECRETS_KEY may give the key instead.
       */
      key_file: z.string().min(1).optional(),
    })
    .prefault({}),
  log: z
    .strictObject({
      level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
      /** Mask the local part of addresses in log lines (`***@example.com`). */
      redact_recipients: z.boolean().default(false),
    })
    .prefault({}),
});

export type RelayConfig = Omit<z.output<typeof configSchema>, 'tls'> & {
  /** The certificate files, resolved; for `self_signed`, where Relay keeps its generated pairs. */
  tls: { pairs: CertificateFiles[]; selfSigned: boolean };
  /** The file the config was read from, or "(embedded default)". */
  source: string;
  /** Directory relative paths were resolved against. */
  baseDir: string;
};

export interface CertificateFiles {
  cert: string;
  key: string;
  /** `self_signed` only: the key type generated when neither file exists. */
  generate?: 'rsa' | 'ecdsa';
}
