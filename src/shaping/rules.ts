/**
 * Traffic shaping rules as data: the packaged config/shaping.yaml, and the operator's own file
 * (shaping.rules) laid over it. Each destination is a named budget (connections, messages per
 * connection, messages per second/minute/hour, TLS mode) that the recipient domains and MX
 * hosts it matches share; the slow-down rules say which replies cut a budget, and `adaptive`
 * how far and for how long.
 *
 * Overlaying: `adaptive` keys replace the packaged ones; `slowdown` rules are added to the
 * packaged ones; a destination with a packaged destination's name (its provider name, e.g.
 * `gmail`) changes only the fields it gives, any other name adds a destination.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { z } from 'zod';
import { duration } from '../config/schema.js';
import { regexSource } from '../config/regex.js';
import { PACKAGED_CONFIG_DIR } from '../config/load.js';
import type { RelayConfig } from '../config/schema.js';

/** delivery.tls's modes, plus the certificate-checking ones a destination may ask for. */
export const TLS_MODES = ['opportunistic', 'required', 'none', 'verify', 'dane'] as const;
export type TlsMode = (typeof TLS_MODES)[number];

export const PACKAGED_SHAPING_RULES = path.join(PACKAGED_CONFIG_DIR, 'shaping.yaml');

export interface DestinationRule {
  /** Also the `destination` label of the metrics, so it comes from the rules, never from traffic. */
  name: string;
  /** Recipient domains, matched exactly. */
  domains: string[];
  /** MX host name suffixes ("google.com" matches "aspmx.l.google.com"), so every domain a provider hosts shares the budget. */
  mxSuffixes: string[];
  maxConnections?: number;
  messagesPerConnection?: number;
  messagesPerSecond?: number;
  messagesPerMinute?: number;
  messagesPerHour?: number;
  /** Overrides delivery.tls for this destination. */
  tls?: TlsMode;
}

export interface SlowdownRule {
  /** The reply code, e.g. 421. */
  code?: number;
  /** Enhanced status code pattern such as "4.7.*". */
  status?: string;
  /** Case-insensitive regex on the reply text. */
  match?: RegExp;
}

export interface AdaptiveSettings {
  /** A slow-down reply multiplies the destination's budget by this. */
  cut: number;
  /** The budget never falls below this share of the configured one. */
  floor: number;
  /** After a slow-down reply, no new delivery to the destination starts for this long (ms). */
  suspendMs: number;
  /** Successful deliveries since the last change before the budget is raised one step. */
  restoreAfter: number;
  /** Each step up multiplies the budget by this, up to the configured one. */
  restoreStep: number;
}

export interface ShapingRules {
  adaptive: AdaptiveSettings;
  slowdown: SlowdownRule[];
  destinations: DestinationRule[];
  /** The files the rules came from, packaged first. */
  sources: string[];
}

export class ShapingRulesError extends Error {}

const hostName = z
  .string()
  .regex(/^\.?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.?$/, 'expected a host or domain name')
  .transform((name) => name.toLowerCase().replace(/^\.|\.$/g, ''));

const positive = z.number().positive();
const count = z.number().int().positive();

const adaptiveSchema = z.strictObject({
  cut: z.number().gt(0).lt(1).optional(),
  floor: z.number().gt(0).max(1).optional(),
  suspend: duration.optional(),
  restore_after: count.optional(),
  restore_step: z.number().gt(1).optional(),
});

const slowdownSchema = z
  .strictObject({
    code: z.number().int().min(400).max(599).optional(),
    status: z
      .string()
      .regex(/^([245*])\.(\d{1,3}|\*)\.(\d{1,3}|\*)$/, 'expected an enhanced status code pattern like "4.7.0" or "4.7.*"')
      .optional(),
    match: regexSource.optional(),
    note: z.string().optional(),
  })
  .refine(
    (r) => r.code !== undefined || r.status !== undefined || r.match !== undefined,
    'a slow-down rule needs "code", "status" or "match"',
  )
  .transform(({ note: _note, ...rule }): SlowdownRule => rule);

const destinationSchema = z.strictObject({
  name: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,63}$/, 'lower-case letters, digits, "-" and "_", at most 64'),
  domains: z.array(hostName).optional(),
  mx_suffixes: z.array(hostName).optional(),
  max_connections: count.optional(),
  messages_per_connection: count.optional(),
  messages_per_second: positive.optional(),
  messages_per_minute: positive.optional(),
  messages_per_hour: positive.optional(),
  tls: z.enum(TLS_MODES).optional(),
  note: z.string().optional(),
});
type DestinationEntry = z.output<typeof destinationSchema>;

const fileSchema = z.strictObject({
  adaptive: adaptiveSchema.optional(),
  slowdown: z.array(slowdownSchema).optional(),
  destinations: z.array(destinationSchema).optional(),
});
type ShapingFile = z.output<typeof fileSchema>;

/** The packaged rules, overlaid with the operator's file when one is given (and `packaged` is not turned off). */
export function loadShapingRules(options: { rules?: string; packaged?: boolean } = {}): ShapingRules {
  const files = [...(options.packaged === false ? [] : [PACKAGED_SHAPING_RULES]), ...(options.rules ? [options.rules] : [])];
  let merged: Merged = { adaptive: {}, slowdown: [], destinations: [] };
  for (const file of files) merged = overlay(merged, readShapingFile(file), file);
  return finish(merged, files);
}

/** The rules a config names (`shaping.rules`, `shaping.packaged_rules`). */
export function shapingRulesFor(config: Pick<RelayConfig, 'shaping'>): ShapingRules {
  return loadShapingRules({ rules: config.shaping.rules, packaged: config.shaping.packaged_rules });
}

/** Rules from already parsed YAML (one source), e.g. for tests. */
export function parseShapingRules(raw: unknown, source: string): ShapingRules {
  return finish(overlay({ adaptive: {}, slowdown: [], destinations: [] }, validate(raw, source), source), [source]);
}

function readShapingFile(file: string): ShapingFile {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ShapingRulesError(`cannot read shaping rules ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const doc = YAML.parseDocument(text);
  if (doc.errors.length > 0) throw new ShapingRulesError(`${file}: invalid YAML: ${doc.errors[0]!.message}`);
  return validate(doc.toJS() ?? {}, file);
}

/** Errors name the file, the key and, for a destination, its name: `destinations.2 (gmail).max_connections`. */
function validate(raw: unknown, source: string): ShapingFile {
  const result = fileSchema.safeParse(raw);
  if (result.success) return result.data;
  const lines = result.error.issues.map((issue) => `  ${keyOf(raw, issue.path)}: ${issue.message}`);
  throw new ShapingRulesError(`invalid shaping rules in ${source}:\n${lines.join('\n')}`);
}

function keyOf(raw: unknown, keyPath: PropertyKey[]): string {
  if (keyPath.length === 0) return '(top level)';
  const parts = keyPath.map(String);
  if (parts[0] === 'destinations' && parts.length > 1) {
    const entry = (raw as { destinations?: unknown[] }).destinations?.[Number(parts[1])] as { name?: unknown } | undefined;
    if (typeof entry?.name === 'string') parts[1] = `${parts[1]} (${entry.name})`;
  }
  return parts.join('.');
}

interface Merged {
  adaptive: NonNullable<ShapingFile['adaptive']>;
  slowdown: SlowdownRule[];
  destinations: DestinationEntry[];
}

function overlay(base: Merged, file: ShapingFile, source: string): Merged {
  const destinations = [...base.destinations];
  const seen = new Set<string>();
  for (const entry of file.destinations ?? []) {
    if (seen.has(entry.name)) throw new ShapingRulesError(`invalid shaping rules in ${source}: destination ${entry.name} is listed twice`);
    seen.add(entry.name);
    const at = destinations.findIndex((d) => d.name === entry.name);
    if (at >= 0) destinations[at] = { ...destinations[at]!, ...entry };
    else destinations.push(entry);
  }
  return {
    adaptive: { ...base.adaptive, ...file.adaptive },
    slowdown: [...base.slowdown, ...(file.slowdown ?? [])],
    destinations,
  };
}

const DEFAULT_ADAPTIVE: AdaptiveSettings = { cut: 0.5, floor: 0.1, suspendMs: 60_000, restoreAfter: 50, restoreStep: 2 };

function finish(merged: Merged, sources: string[]): ShapingRules {
  const claimed = new Map<string, string>();
  const destinations = merged.destinations.map((d): DestinationRule => {
    const domains = d.domains ?? [];
    const mxSuffixes = d.mx_suffixes ?? [];
    if (domains.length === 0 && mxSuffixes.length === 0) {
      throw new ShapingRulesError(
        `invalid shaping rules in ${sources.join(' + ')}: destination ${d.name} needs "domains" or "mx_suffixes"`,
      );
    }
    // One domain or suffix in two destinations would make the budget a domain shares depend on rule order.
    for (const key of [...domains.map((x) => `domain ${x}`), ...mxSuffixes.map((x) => `MX suffix ${x}`)]) {
      const other = claimed.get(key);
      if (other && other !== d.name) {
        throw new ShapingRulesError(`invalid shaping rules in ${sources.join(' + ')}: ${key} is in destinations ${other} and ${d.name}`);
      }
      claimed.set(key, d.name);
    }
    return {
      name: d.name,
      domains,
      mxSuffixes,
      maxConnections: d.max_connections,
      messagesPerConnection: d.messages_per_connection,
      messagesPerSecond: d.messages_per_second,
      messagesPerMinute: d.messages_per_minute,
      messagesPerHour: d.messages_per_hour,
      tls: d.tls,
    };
  });
  const a = merged.adaptive;
  const adaptive: AdaptiveSettings = {
    cut: a.cut ?? DEFAULT_ADAPTIVE.cut,
    floor: a.floor ?? DEFAULT_ADAPTIVE.floor,
    suspendMs: a.suspend ?? DEFAULT_ADAPTIVE.suspendMs,
    restoreAfter: a.restore_after ?? DEFAULT_ADAPTIVE.restoreAfter,
    restoreStep: a.restore_step ?? DEFAULT_ADAPTIVE.restoreStep,
  };
  return { adaptive, slowdown: merged.slowdown, destinations, sources };
}
