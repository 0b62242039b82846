/**
 * What one delivery attempt demands of its TLS sessions, and whether a session met it. The
 * recipient domain's DANE records (per MX host) take precedence over its MTA-STS policy (RFC
 * 8461 section 2); the attempt's TLS mode (delivery.tls) adds its own demand on top. Every
 * session under a DANE or MTA-STS policy is counted for the domain's TLS report.
 */
import { checkServerIdentity, type TLSSocket } from 'node:tls';
import type { promises as dns } from 'node:dns';
import { validateMx } from 'mailauth/lib/mta-sts.js';
import type { RelayConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { StsPolicyRecord, TlsInfo, TlsPolicyStore } from '../queue/storage.js';
import { matchTlsa, presentedChain } from './dane.js';
import { StsPolicies } from './mta-sts.js';
import { TlsResultCounter, type ReportedPolicy } from './counter.js';
import { lookupTlsa, usableTlsa, type TlsaLookup, type TlsaRecord } from './tlsa.js';
import { trustedCas } from './trust.js';

export type OutboundTlsMode = RelayConfig['delivery']['tls'];

/** Deliveries to one MX host share a TLSA answer for this long (a burst costs one query). */
const TLSA_KEEP_MS = 2_000;

/** The TLS mode of an attempt: delivery.tls, unless a destination's rule chooses another. */
export function tlsModeOf(config: Pick<RelayConfig, 'delivery'>): OutboundTlsMode {
  return config.delivery.tls;
}

/** A refusal shaped like a delivery reply: an enhanced status code first. */
export interface TlsRefusal {
  text: string;
}

/** The recipient domain's side: the mode and its MTA-STS policy, looked up once per attempt. */
export interface DomainTls {
  domain: string;
  mode: OutboundTlsMode;
  /** An enforce or testing policy. */
  sts?: StsPolicyRecord;
}

/** What a session to one MX host must achieve. */
export interface HostTls {
  host: string;
  policy: TlsInfo['policy'];
  /** Usable DANE records: the certificate must match one. */
  tlsa?: TlsaRecord[];
  /** Cleartext is refused. */
  requireTls: boolean;
  /** An unauthenticated certificate is refused. */
  requireVerified: boolean;
  /** The STS policy in testing mode does not list this host: delivered, reported as a failure. */
  stsMismatch?: boolean;
}

/** How a session is opened: whether STARTTLS is tried, and the CAs its certificate is checked against. */
export interface SessionTlsOptions {
  starttls: boolean;
  ca: string[];
}

export interface OutboundTlsOptions {
  config: RelayConfig;
  store: TlsPolicyStore;
  resolver: dns.Resolver;
  logger: Logger;
  clock?: () => number;
}

export class OutboundTls {
  private readonly config: RelayConfig;
  private readonly sts: StsPolicies;
  private readonly counter: TlsResultCounter;
  private readonly clock: () => number;
  private readonly recentTlsa = new Map<string, { at: number; lookup: Promise<TlsaLookup> }>();

  constructor(opts: OutboundTlsOptions) {
    this.config = opts.config;
    this.clock = opts.clock ?? Date.now;
    this.sts = new StsPolicies({
      store: opts.store,
      resolver: opts.resolver,
      cas: () => this.cas(),
      logger: opts.logger,
      clock: this.clock,
      timeoutMs: opts.config.delivery.connect_timeout,
    });
    this.counter = new TlsResultCounter(opts.store, opts.logger, this.clock);
  }

  async domain(domain: string, mode: OutboundTlsMode): Promise<DomainTls> {
    if (mode === 'none') return { domain, mode };
    const { policy, fetchError } = await this.sts.lookup(domain);
    if (fetchError) this.counter.count(domain, policy ? stsReported(policy) : { type: 'sts', lines: [] }, '', 'sts-policy-fetch-error');
    return policy && policy.mode !== 'none' ? { domain, mode, sts: policy } : { domain, mode };
  }

  /** A kept session may carry this attempt when a new one to its host would have been checked the same way. */
  reusable(h: HostTls, tls: TlsInfo | undefined): boolean {
    return tls !== undefined && tls.policy === h.policy && (!h.requireVerified || tls.verified) && (!h.requireTls || tls.version !== null);
  }

  async host(d: DomainTls, host: string): Promise<{ ok: true; host: HostTls } | { ok: false; reply: TlsRefusal }> {
    if (d.mode === 'none') return { ok: true, host: { host, policy: 'none', requireTls: false, requireVerified: false } };
    const tlsa = await this.tlsa(host);
    if (tlsa.status === 'temporary') {
      return { ok: false, reply: { text: `4.7.5 TLSA lookup for ${host} failed temporarily (${tlsa.reason})` } };
    }
    const usable = tlsa.status === 'secure' ? usableTlsa(tlsa.records) : [];
    if (usable.length > 0) return { ok: true, host: { host, policy: 'dane', tlsa: usable, requireTls: true, requireVerified: true } };
    // Validated records, none usable: DANE still forbids cleartext (RFC 7672 section 2.2).
    const daneWithoutUsable = tlsa.status === 'secure';
    if (d.mode === 'dane') return { ok: false, reply: { text: `4.7.5 ${host} has no usable DANE TLSA records (delivery.tls: dane)` } };
    const verify = d.mode === 'verify';
    const required = d.mode === 'required' || daneWithoutUsable;
    if (d.sts) {
      const listed = validateMx(host, d.sts).valid;
      if (!listed && d.sts.mode === 'enforce') {
        this.counter.count(d.domain, stsReported(d.sts), host, 'validation-failure');
        return { ok: false, reply: { text: `4.7.5 ${host} is not an MX host the MTA-STS policy of ${d.domain} lists` } };
      }
      const enforce = d.sts.mode === 'enforce';
      return {
        ok: true,
        host: { host, policy: 'sts', requireTls: enforce || verify || required, requireVerified: enforce || verify, stsMismatch: !listed },
      };
    }
    return { ok: true, host: { host, policy: 'none', requireTls: verify || required, requireVerified: verify } };
  }

  sessionOptions(d: DomainTls): SessionTlsOptions {
    return { starttls: d.mode !== 'none', ca: this.cas() };
  }

  /**
   * Checks an open session against the host's demands: its TLS facts for the event, and a
   * refusal when the session must not carry the mail (the caller closes it and tries the next).
   */
  check(d: DomainTls, h: HostTls, socket: TLSSocket | undefined): { info: TlsInfo; refusal?: TlsRefusal } {
    const reported = h.policy === 'dane' ? daneReported(h.tlsa!) : h.policy === 'sts' ? stsReported(d.sts!) : undefined;
    if (!socket) {
      const info: TlsInfo = { version: null, cipher: null, verified: false, policy: h.policy };
      if (reported) this.counter.count(d.domain, reported, h.host, 'starttls-not-supported');
      if (!h.requireTls) return { info };
      const by = h.policy === 'none' ? '' : ` by ${requirement(d, h)}`;
      return { info, refusal: { text: `4.7.10 TLS required${by} but ${h.host} does not offer STARTTLS` } };
    }
    const failure = h.policy === 'dane' ? this.daneFailure(h, socket) : pkixFailure(h.host, socket);
    const info: TlsInfo = {
      version: socket.getProtocol(),
      cipher: socket.getCipher()?.name ?? null,
      verified: failure === undefined,
      policy: h.policy,
    };
    if (reported) this.counter.count(d.domain, reported, h.host, h.stsMismatch ? 'validation-failure' : (failure?.resultType ?? 'success'));
    if (!failure || !h.requireVerified) return { info };
    return { info, refusal: { text: `4.7.5 certificate of ${h.host} not verified as ${requirement(d, h)} requires: ${failure.reason}` } };
  }

  private daneFailure(h: HostTls, socket: TLSSocket): Failure | undefined {
    const result = matchTlsa(h.tlsa!, presentedChain(socket.getPeerCertificate(true)), h.host, this.clock());
    return result.ok ? undefined : { reason: result.reason, resultType: 'validation-failure' };
  }

  private tlsa(host: string): Promise<TlsaLookup> {
    const now = this.clock();
    const entry = this.recentTlsa.get(host);
    if (entry && now >= entry.at && now - entry.at < TLSA_KEEP_MS) return entry.lookup;
    const { smtp_port: port, dns_servers: servers, dns_timeout: timeoutMs } = this.config.delivery;
    const lookup = lookupTlsa(host, port, { servers, timeoutMs });
    if (this.recentTlsa.size > 10_000) this.recentTlsa.clear();
    this.recentTlsa.set(host, { at: now, lookup });
    // A temporary failure is not remembered: the next delivery asks again.
    void lookup.then((r) => r.status === 'temporary' && this.recentTlsa.get(host)?.lookup === lookup && this.recentTlsa.delete(host));
    return lookup;
  }

  private cas(): string[] {
    return trustedCas(this.config.delivery.tls_ca_file);
  }
}

interface Failure {
  reason: string;
  /** RFC 8460 result type. */
  resultType: string;
}

/** Web PKI: a chain to a trusted CA (delivery.tls_ca_file included) and a certificate for the MX name. */
function pkixFailure(host: string, socket: TLSSocket): Failure | undefined {
  if (socket.authorized) {
    const mismatch = checkServerIdentity(host, socket.getPeerCertificate());
    return mismatch && { reason: `the certificate is not for ${host}`, resultType: 'certificate-host-mismatch' };
  }
  const code = String(socket.authorizationError ?? 'unknown');
  if (/ALTNAME/.test(code)) return { reason: `the certificate is not for ${host}`, resultType: 'certificate-host-mismatch' };
  if (/EXPIRED/.test(code)) return { reason: 'the certificate has expired', resultType: 'certificate-expired' };
  if (/SELF_SIGNED|ISSUER|UNABLE_TO_VERIFY|UNTRUSTED/.test(code)) {
    return { reason: `the certificate is not from a trusted CA (${code})`, resultType: 'certificate-not-trusted' };
  }
  return { reason: code, resultType: 'validation-failure' };
}

function requirement(d: DomainTls, h: HostTls): string {
  if (h.policy === 'dane') return 'DANE';
  if (h.policy === 'sts' && d.sts?.mode === 'enforce') return `the MTA-STS policy of ${d.domain}`;
  return `delivery.tls: ${d.mode}`;
}

function stsReported(p: StsPolicyRecord): ReportedPolicy {
  return {
    type: 'sts',
    lines: ['version: STSv1', `mode: ${p.mode}`, ...p.mx.map((mx) => `mx: ${mx}`), `max_age: ${p.maxAge}`],
  };
}

function daneReported(records: TlsaRecord[]): ReportedPolicy {
  return { type: 'tlsa', lines: records.map((r) => `${r.usage} ${r.selector} ${r.matchingType} ${r.data.toString('hex')}`) };
}
