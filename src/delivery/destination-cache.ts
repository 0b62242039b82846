/**
 * A short memory of each recipient domain's mail hosts, so a burst of mail to one domain costs
 * one set of MX and A/AAAA lookups rather than three queries per message (the resolver that
 * Node talks to may not cache at all). Only answers that found hosts are kept, and only for a
 * couple of seconds, below any sensible DNS TTL; concurrent lookups of one domain share one.
 */
import { resolveDestinations, type MxResult } from './mx.js';
import type { Resolver } from './resolver.js';

const KEEP_MS = 2_000;

export class DestinationCache {
  private readonly entries = new Map<string, { at: number; result: Promise<MxResult> }>();

  constructor(private readonly resolver: Resolver) {}

  lookup(domain: string): Promise<MxResult> {
    const now = Date.now();
    const entry = this.entries.get(domain);
    if (entry && now - entry.at < KEEP_MS) return entry.result;
    const result = resolveDestinations(this.resolver, domain);
    this.entries.set(domain, { at: now, result });
    // Failures are not remembered: the next attempt asks DNS again.
    result.then(
      (r) => r.ok || this.forget(domain, result),
      () => this.forget(domain, result),
    );
    if (this.entries.size > 10_000) this.dropExpired(now);
    return result;
  }

  private forget(domain: string, result: Promise<MxResult>): void {
    if (this.entries.get(domain)?.result === result) this.entries.delete(domain);
  }

  private dropExpired(now: number): void {
    for (const [domain, entry] of this.entries) if (now - entry.at >= KEEP_MS) this.entries.delete(domain);
  }
}
