/**
 * MTA-STS (RFC 8461): a recipient domain's policy, kept durably in storage. The `_mta-sts` TXT
 * record says which policy is current; a policy is fetched over HTTPS (certificate checked
 * against the trusted CAs, no redirects) when none is known or its id changed, and refreshed in
 * the background once half its max_age has passed. A known policy stays in force until it
 * expires when a lookup or a fetch fails (RFC 8461 section 5.1). mailauth parses the policy.
 */
import https from 'node:https';
import type { promises as dns } from 'node:dns';
import { parsePolicy, resolvePolicy } from 'mailauth/lib/mta-sts.js';
import type { Logger } from '../log.js';
import type { StsPolicyRecord, TlsPolicyStore } from '../queue/storage.js';

const MAX_POLICY_BYTES = 64 * 1024;
/** Concurrent deliveries to one domain share a lookup for this long. */
const KEEP_MS = 2_000;

export interface StsLookup {
  policy: StsPolicyRecord | undefined;
  /** Why no policy (or only an older one) could be fetched, for TLS-RPT's sts-policy-fetch-error. */
  fetchError?: string;
}

export interface StsOptions {
  store: Pick<TlsPolicyStore, 'stsPolicy' | 'saveStsPolicy'>;
  resolver: dns.Resolver;
  cas: () => string[];
  logger: Logger;
  clock: () => number;
  timeoutMs: number;
  /** The policy host's HTTPS port: 443, as RFC 8461 fixes it. */
  httpsPort?: number;
}

export class StsPolicies {
  private readonly recent = new Map<string, { at: number; lookup: Promise<StsLookup> }>();
  private readonly refreshing = new Set<string>();

  constructor(private readonly opts: StsOptions) {}

  lookup(domain: string): Promise<StsLookup> {
    const now = this.opts.clock();
    const key = domain.toLowerCase();
    const entry = this.recent.get(key);
    if (entry && now - entry.at < KEEP_MS && now >= entry.at) return entry.lookup;
    const lookup = this.resolve(key);
    this.recent.set(key, { at: now, lookup });
    if (this.recent.size > 10_000) this.recent.clear();
    return lookup;
  }

  private async resolve(domain: string): Promise<StsLookup> {
    const { store, clock, logger } = this.opts;
    const stored = await store.stsPolicy(domain);
    const known = stored && stored.expiresAt > clock() ? stored : undefined;
    let id: string | false;
    try {
      id = await resolvePolicy(domain, { resolver: (name: string, type: string) => this.opts.resolver.resolve(name, type) as never });
    } catch (err) {
      // The TXT record cannot be read now: a known policy stays in force.
      return { policy: known };
    }
    if (!id) return { policy: known };
    if (known && known.id === id) {
      if (clock() > known.fetchedAt + (known.maxAge * 1000) / 2) this.refreshInBackground(domain, id);
      return { policy: known };
    }
    try {
      return { policy: await this.fetchAndSave(domain, id) };
    } catch (err) {
      const reason = (err as Error).message;
      logger.warn({ recipientDomain: domain, err: reason, keptPolicy: known?.id ?? null }, 'MTA-STS policy fetch failed');
      return { policy: known, fetchError: reason };
    }
  }

  private refreshInBackground(domain: string, id: string): void {
    if (this.refreshing.has(domain)) return;
    this.refreshing.add(domain);
    // Cannot reject: a failed refresh is logged and the known policy stays until it expires.
    void this.fetchAndSave(domain, id)
      .catch((err: unknown) =>
        this.opts.logger.warn({ recipientDomain: domain, err: (err as Error).message }, 'MTA-STS policy refresh failed'),
      )
      .finally(() => this.refreshing.delete(domain));
  }

  private async fetchAndSave(domain: string, id: string): Promise<StsPolicyRecord> {
    const text = await this.fetchPolicyText(domain);
    const parsed = parsePolicy(text);
    const fetchedAt = this.opts.clock();
    const maxAge = parsed.maxAge ?? 0;
    const policy: StsPolicyRecord = {
      domain,
      id,
      mode: parsed.mode,
      mx: parsed.mx ?? [],
      maxAge,
      fetchedAt,
      expiresAt: fetchedAt + maxAge * 1000,
    };
    await this.opts.store.saveStsPolicy(policy);
    this.opts.logger.info({ recipientDomain: domain, id, mode: policy.mode, maxAge }, 'MTA-STS policy fetched');
    return policy;
  }

  /** GET https://mta-sts.DOMAIN/.well-known/mta-sts.txt, resolved through the relay's resolver. */
  private async fetchPolicyText(domain: string): Promise<string> {
    const servername = `mta-sts.${domain}`;
    const addresses = await this.opts.resolver.resolve4(servername).catch(() => this.opts.resolver.resolve6(servername));
    const address = addresses[0];
    if (!address) throw new Error(`${servername} has no address`);
    return new Promise((resolve, reject) => {
      const req = https.get(
        {
          host: address,
          port: this.opts.httpsPort ?? 443,
          path: '/.well-known/mta-sts.txt',
          servername,
          headers: { host: servername },
          ca: this.opts.cas(),
          timeout: this.opts.timeoutMs,
          agent: false,
        },
        (res) => {
          if (res.statusCode !== 200) {
            res.resume();
            return reject(new Error(`https://${servername}/.well-known/mta-sts.txt answered ${res.statusCode}`));
          }
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size > MAX_POLICY_BYTES) req.destroy(new Error('policy too large'));
            else chunks.push(chunk);
          });
          res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error('policy fetch timed out')));
      req.on('error', reject);
    });
  }
}
