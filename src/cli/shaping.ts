/**
 * `relay shaping status`: the traffic shaping destinations with their configured limits, and,
 * when `relay serve` runs with this config, its current budgets. The budgets live in the
 * running relay's memory (each node learns its own pace), so they are read from its HTTP API
 * (`GET /v1/shaping`, with http.admin_token) rather than from the database; without a running
 * relay, or without an admin token, the configured rules are shown and the reason is said.
 */
import type { Command } from 'commander';
import type { RelayConfig } from '../config/schema.js';
import { shapingRulesFor } from '../shaping/rules.js';
import { shapingJson, type DestinationJson, type ShapingJson, type ShapingLimitsJson } from '../shaping/status.js';
import type { Cli } from './context.js';
import { formatTime, print, printJson, printTable } from './output.js';

const LIVE_TIMEOUT_MS = 3000;

export function registerShapingCommands(program: Command, cli: Cli): void {
  const shaping = program.command('shaping').description('traffic shaping per destination');
  shaping
    .command('status')
    .description("the shaping destinations, their configured limits and, when relay serve runs, this node's current budgets")
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const config = cli.config();
      const live = await readLive(config);
      const status: ShapingJson = 'status' in live ? live.status : shapingJson(shapingRulesFor(config));
      const liveNote = 'status' in live ? `live state from ${live.url}` : `no live state: ${live.reason}`;
      if (opts.json) return printJson({ live: 'status' in live, ...('reason' in live && { live_error: live.reason }), ...status });
      printStatus(status, liveNote);
    });
}

type Live = { status: ShapingJson; url: string } | { reason: string };

async function readLive(config: RelayConfig): Promise<Live> {
  const { host, port, admin_token: token } = config.http;
  const loopback = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '[::1]' : host.includes(':') ? `[${host}]` : host;
  const url = `http://${loopback}:${port}/v1/shaping`;
  if (!token) return { reason: `http.admin_token is not set, so ${url} cannot be read` };
  try {
    const response = await fetch(url, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(LIVE_TIMEOUT_MS) });
    if (!response.ok) return { reason: `${url} answered HTTP ${response.status}` };
    return { status: (await response.json()) as ShapingJson, url };
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
    return { reason: `relay serve is not reachable at ${url} (${cause})` };
  }
}

function printStatus(status: ShapingJson, liveNote: string): void {
  const { adaptive } = status;
  print(`Rules: ${status.sources.join(' + ') || '(none)'}`);
  print(
    `Adaptive: a slow-down reply multiplies the budget by ${adaptive.cut} (not below ${adaptive.floor}) and suspends for ${adaptive.suspend_ms / 1000}s; ` +
      `${adaptive.restore_after} deliveries raise it x${adaptive.restore_step}`,
  );
  print(`State: ${liveNote}`);
  print();
  printTable(
    ['DESTINATION', 'MATCHES', 'CONNECTIONS', 'MSG/CONN', 'RATE', 'TLS', 'LEVEL', 'SUSPENDED UNTIL', 'IN FLIGHT'],
    status.destinations.map((d) => [
      d.name,
      matches(d),
      pair(d.configured.max_connections, d.current?.max_connections),
      d.messages_per_connection,
      pair(rate(d.configured), d.current && rate(d.current)),
      d.tls,
      d.current?.level,
      d.current && (formatTime(d.current.suspended_until) ?? 'no'),
      d.current?.in_flight,
    ]),
    'No shaping destinations: nothing is shaped.',
  );
  const changes = status.changes ?? [];
  if (changes.length === 0) return;
  print();
  printTable(
    ['TIME', 'DESTINATION', 'CHANGE', 'LEVEL', 'REPLY'],
    changes.slice(-10).map((c) => [formatTime(c.at), c.destination, c.reason, `${c.from_level} -> ${c.to_level}`, c.reply]),
    '',
  );
}

function matches(d: DestinationJson): string {
  return [...d.domains, ...d.mx_suffixes.map((s) => `MX *.${s}`)].join(', ');
}

/** "20/s" or "20/s, 600/m"; null without a rate. */
function rate(limits: ShapingLimitsJson): string | null {
  const parts = [
    limits.messages_per_second !== null && `${limits.messages_per_second}/s`,
    limits.messages_per_minute !== null && `${limits.messages_per_minute}/m`,
    limits.messages_per_hour !== null && `${limits.messages_per_hour}/h`,
  ].filter(Boolean);
  return parts.length ? parts.join(', ') : null;
}

/** The configured value, and the current one after it when they differ. */
function pair<T>(configured: T | null, current: T | null | undefined): string | null {
  if (configured === null) return null;
  return current === undefined || current === configured ? String(configured) : `${String(current)} of ${String(configured)}`;
}
