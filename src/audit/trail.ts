/**
 * Recording management actions: who (the door names the actor: `cli:<OS user>`, the HTTP
 * principal, `signal:SIGHUP`), what, on which target, and what changed. Secrets are never part
 * of a change: string values under names that say password, secret, token or key are dropped
 * here as a last guard, and callers pass only what is safe to show.
 */
import type { AuditEntry, AuditLog } from '../queue/storage.js';
import { canonicalJson, rowHash } from './chain.js';

export interface AuditAction {
  actor: string;
  /** `noun.verb`, e.g. credential.rotate. */
  action: string;
  target: string;
  change?: Record<string, unknown>;
}

const SECRET_NAME = /password|secret|token|private|api_?key/i;

function withoutSecrets(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutSecrets);
  if (!value || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value as Record<string, unknown>)
      .filter(([key, v]) => !(SECRET_NAME.test(key) && typeof v === 'string'))
      .map(([key, v]) => [key, withoutSecrets(v)]),
  );
}

export class AuditTrail {
  constructor(
    private readonly log: AuditLog,
    private readonly clock: () => number = Date.now,
  ) {}

  record(action: AuditAction): Promise<AuditEntry> {
    const change = canonicalJson(withoutSecrets(action.change ?? {}));
    return this.log.append({ at: this.clock(), actor: action.actor, action: action.action, target: action.target, change }, rowHash);
  }
}

/** An entry as the CLI's --json and the HTTP API show it. */
export function auditView(entry: AuditEntry) {
  return {
    seq: entry.seq,
    at: new Date(entry.at).toISOString(),
    actor: entry.actor,
    action: entry.action,
    target: entry.target,
    change: JSON.parse(entry.change) as Record<string, unknown>,
    hash: entry.hash,
  };
}
