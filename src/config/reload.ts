/**
 * SIGHUP: a new config applied to a running relay. The running parts read `config.limits`,
 * `config.delivery` and the rest from one shared object at each use, so replacing those
 * sections in place is the reload (relay.ts re-reads the certificate files itself); what is bound at start (listeners, database, resolvers,
 * loaded rules) keeps its old value and is reported as needing a restart. The shaping rules are
 * the exception: relay.ts reads them again and hands them to the running shaper.
 */
import { isDeepStrictEqual } from 'node:util';
import type { RelayConfig } from './schema.js';

/** Sections read at each use; the nested keys listed in STARTUP_ONLY are kept as they were. */
const LIVE_SECTIONS = ['tls', 'limits', 'delivery', 'bounces', 'shaping', 'log', 'signing'] as const;
const STARTUP_ONLY: Record<(typeof LIVE_SECTIONS)[number], string[]> = {
  tls: [],
  limits: [],
  delivery: ['dns_servers', 'paused'],
  bounces: ['rules'],
  shaping: [],
  log: [],
  signing: [],
};

/** Applies `next` to `current` in place; returns the changed keys that take a restart. */
export function applyConfig(current: RelayConfig, next: RelayConfig): string[] {
  const needRestart: string[] = [];
  const live = new Set<string>(LIVE_SECTIONS);
  for (const key of Object.keys(next) as (keyof RelayConfig)[]) {
    if (!live.has(key) && !['source', 'baseDir'].includes(key) && !isDeepStrictEqual(current[key], next[key])) needRestart.push(key);
  }
  for (const section of LIVE_SECTIONS) {
    const kept: Record<string, unknown> = {};
    const old = current[section] as Record<string, unknown>;
    for (const key of STARTUP_ONLY[section]) {
      if (!isDeepStrictEqual(old[key], (next[section] as Record<string, unknown>)[key])) needRestart.push(`${section}.${key}`);
      kept[key] = old[key];
    }
    (current as Record<string, unknown>)[section] = { ...next[section], ...kept };
  }
  return needRestart;
}
