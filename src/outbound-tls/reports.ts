/**
 * TLS-RPT (RFC 8460): once a UTC day is over, the counts of its sessions under DANE and MTA-STS
 * policies become one aggregate report per recipient domain, sent gzipped to each `rua` of the
 * domain's `_smtp._tls` TXT record: by mail through Relay's own queue (mailto:), or POSTed
 * (https:). Taking a day's counts removes them, so among nodes sharing a database one sends it.
 * delivery.tls_reports: false drops the counts instead. The clock decides when a day is over.
 */
import { randomUUID } from 'node:crypto';
import type { promises as dns } from 'node:dns';
import https from 'node:https';
import { gzipSync } from 'node:zlib';
import type { RelayConfig } from '../config/schema.js';
import { partsOf } from '../envelope/header.js';
import type { Logger } from '../log.js';
import { newQueueId } from '../queue/ids.js';
import type { DomainStore, MessageQueue, TlsPolicyStore, TlsResultCount } from '../queue/storage.js';
import type { DkimSigner } from '../signing/dkim.js';
import { rfc5322Date } from '../submission/message.js';
import { utcDay } from './counter.js';
import { trustedCas } from './trust.js';

/** The credential TLS reports are queued under. */
export const TLS_REPORTER = 'TLS-REPORTS';
const CHECK_EVERY_MS = 15 * 60_000;
const CRLF = '\r\n';

/** An RFC 8460 section 4 report. */
export interface TlsReport {
  'organization-name': string;
  'date-range': { 'start-datetime': string; 'end-datetime': string };
  'contact-info': string;
  'report-id': string;
  policies: {
    policy: { 'policy-type': string; 'policy-string': string[]; 'policy-domain': string; 'mx-host': string[] };
    summary: { 'total-successful-session-count': number; 'total-failure-session-count': number };
    'failure-details': { 'result-type': string; 'receiving-mx-hostname'?: string; 'failed-session-count': number }[];
  }[];
}

export interface TlsReporterOptions {
  config: RelayConfig;
  store: Pick<TlsPolicyStore, 'takeTlsResults'>;
  queue: Pick<MessageQueue, 'enqueue'>;
  /** Mailed reports are DKIM-signed (RFC 8460 section 5.3) with the key of the host name's sender domain, or of a parent domain. */
  domains: Pick<DomainStore, 'get'>;
  signer: DkimSigner;
  resolver: dns.Resolver;
  logger: Logger;
  clock?: () => number;
  /** Called once a report is queued, so delivery picks it up at once. */
  onQueued: () => void;
}

export class TlsReporter {
  private readonly clock: () => number;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<number> | undefined;

  constructor(private readonly opts: TlsReporterOptions) {
    this.clock = opts.clock ?? Date.now;
  }

  start(): void {
    this.timer = setInterval(() => void this.sendDue(), CHECK_EVERY_MS);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  /** Reports every finished day not reported yet; resolves with the number of reports sent or queued. */
  sendDue(): Promise<number> {
    this.running ??= this.send()
      .catch((err: unknown) => {
        this.opts.logger.error({ err }, 'TLS reports failed');
        return 0;
      })
      .finally(() => (this.running = undefined));
    return this.running;
  }

  private async send(): Promise<number> {
    const counts = await this.opts.store.takeTlsResults(utcDay(this.clock()));
    if (counts.length === 0 || !this.opts.config.delivery.tls_reports) return 0;
    const byReport = new Map<string, TlsResultCount[]>();
    for (const c of counts) {
      const key = `${c.day} ${c.policyDomain}`;
      byReport.set(key, [...(byReport.get(key) ?? []), c]);
    }
    let sent = 0;
    for (const group of byReport.values()) {
      const { day, policyDomain } = group[0]!;
      try {
        sent += await this.deliver(policyDomain, day, buildReport(this.opts.config.hostname, policyDomain, day, group));
      } catch (err) {
        this.opts.logger.warn({ err, recipientDomain: policyDomain, day }, 'could not send a TLS report');
      }
    }
    return sent;
  }

  private async deliver(domain: string, day: string, report: TlsReport): Promise<number> {
    const ruas = await this.reportingUris(domain);
    if (ruas.length === 0) return 0;
    const gzipped = gzipSync(JSON.stringify(report));
    let sent = 0;
    for (const rua of ruas) {
      try {
        if (rua.startsWith('mailto:')) await this.queueMail(decodeURIComponent(rua.slice('mailto:'.length)), domain, day, report, gzipped);
        else await this.post(new URL(rua), gzipped);
        sent++;
        this.opts.logger.info({ recipientDomain: domain, day, rua }, 'TLS report sent');
      } catch (err) {
        this.opts.logger.warn({ err, recipientDomain: domain, day, rua }, 'could not send a TLS report');
      }
    }
    return sent;
  }

  /** The mailto: and https: URIs of the domain's TLSRPTv1 record (RFC 8460 section 3). */
  private async reportingUris(domain: string): Promise<string[]> {
    let records: string[][];
    try {
      records = await this.opts.resolver.resolveTxt(`_smtp._tls.${domain}`);
    } catch {
      return [];
    }
    const record = records.map((parts) => parts.join('')).find((text) => /^v=TLSRPTv1\s*(;|$)/.test(text));
    const rua = record
      ?.split(';')
      .map((field) => field.trim())
      .find((field) => field.startsWith('rua='));
    if (!rua) return [];
    return rua
      .slice(4)
      .split(',')
      .map((uri) => uri.trim())
      .filter((uri) => /^(mailto:[^@]+@.+|https:\/\/.+)$/.test(uri));
  }

  private async queueMail(to: string, domain: string, day: string, report: TlsReport, gzipped: Buffer): Promise<void> {
    const { config } = this.opts;
    // Queued for now by the wall clock, as the delivery loop reads it.
    const now = Date.now();
    const message = buildReportMail({ hostname: config.hostname, to, domain, day, report, gzipped, now });
    const key = await this.signingDomain();
    const body = key
      ? this.opts.signer.sign(message.body, {
          domain: key.name,
          selector: key.selector,
          algorithm: key.algorithm,
          privateKeyPem: key.privateKeyPem,
        })
      : message.body;
    if (!key)
      this.opts.logger.warn(
        { hostname: config.hostname },
        'TLS report sent unsigned: no sender domain for the host name (relay domain add)',
      );
    const queueId = newQueueId();
    await this.opts.queue.enqueue({
      queueId,
      messageId: message.messageId,
      credential: TLS_REPORTER,
      // The null sender: a report that cannot be delivered must not cause a bounce (RFC 8460 section 5.3 allows any).
      mailFrom: '',
      recipients: [to],
      body: partsOf(body),
      receivedAt: now,
      expiresAt: now + config.delivery.max_queue_age,
    });
    this.opts.onQueued();
  }

  private async signingDomain() {
    const labels = this.opts.config.hostname.toLowerCase().split('.');
    for (let i = 0; i < labels.length - 1; i++) {
      const domain = await this.opts.domains.get(labels.slice(i).join('.'));
      if (domain) return domain;
    }
    return undefined;
  }

  private async post(url: URL, gzipped: Buffer): Promise<void> {
    const { resolver, config } = this.opts;
    const [address] = await resolver.resolve4(url.hostname).catch(() => resolver.resolve6(url.hostname));
    if (!address) throw new Error(`${url.hostname} has no address`);
    await new Promise<void>((resolve, reject) => {
      const req = https.request(
        {
          method: 'POST',
          host: address,
          port: url.port || 443,
          path: `${url.pathname}${url.search}`,
          servername: url.hostname,
          headers: { host: url.host, 'content-type': 'application/tlsrpt+gzip', 'content-length': gzipped.length },
          ca: trustedCas(config.delivery.tls_ca_file),
          timeout: config.delivery.connect_timeout,
          agent: false,
        },
        (res) => {
          res.resume();
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) resolve();
          else reject(new Error(`${url.origin} answered ${status}`));
        },
      );
      req.on('timeout', () => req.destroy(new Error('TLS report POST timed out')));
      req.on('error', reject);
      req.end(gzipped);
    });
  }
}

export function buildReport(hostname: string, domain: string, day: string, counts: TlsResultCount[]): TlsReport {
  const policies = new Map<string, TlsResultCount[]>();
  for (const c of counts) {
    const key = JSON.stringify([c.policyType, c.policyString]);
    policies.set(key, [...(policies.get(key) ?? []), c]);
  }
  return {
    'organization-name': hostname,
    'date-range': { 'start-datetime': `${day}T00:00:00Z`, 'end-datetime': `${day}T23:59:59Z` },
    'contact-info': `postmaster@${hostname}`,
    'report-id': `${day}T00:00:00Z_${domain}_${randomUUID()}@${hostname}`,
    policies: [...policies.values()].sort(byPolicy).map((group) => {
      const failures = group.filter((c) => c.resultType !== 'success');
      const total = (list: TlsResultCount[]) => list.reduce((sum, c) => sum + c.count, 0);
      return {
        policy: {
          'policy-type': group[0]!.policyType,
          'policy-string': group[0]!.policyString,
          'policy-domain': domain,
          'mx-host': [...new Set(group.map((c) => c.mxHost))].filter(Boolean).sort(),
        },
        summary: { 'total-successful-session-count': total(group) - total(failures), 'total-failure-session-count': total(failures) },
        'failure-details': failures
          .sort((a, b) => `${a.resultType} ${a.mxHost}`.localeCompare(`${b.resultType} ${b.mxHost}`))
          .map((c) => ({
            'result-type': c.resultType,
            // A policy fetch failure comes before any MX host.
            ...(c.mxHost && { 'receiving-mx-hostname': c.mxHost }),
            'failed-session-count': c.count,
          })),
      };
    }),
  };
}

const byPolicy = (a: TlsResultCount[], b: TlsResultCount[]) =>
  JSON.stringify([a[0]!.policyType, a[0]!.policyString]).localeCompare(JSON.stringify([b[0]!.policyType, b[0]!.policyString]));

/** The report as mail (RFC 8460 section 5.3): a multipart/report of type tlsrpt with the gzipped JSON attached. */
export function buildReportMail(input: {
  hostname: string;
  to: string;
  domain: string;
  day: string;
  report: TlsReport;
  gzipped: Buffer;
  now: number;
}): { messageId: string; body: Buffer } {
  const { hostname, to, domain, day, report, gzipped, now } = input;
  const messageId = `<${randomUUID()}@${hostname}>`;
  const boundary = `tlsrpt-${randomUUID()}`;
  const start = Date.parse(`${day}T00:00:00Z`) / 1000;
  const filename = `${hostname}!${domain}!${start}!${start + 86_399}.json.gz`;
  const lines = [
    `From: TLS reports <noreply-smtp-tls-reporting@${hostname}>`,
    `To: <${to}>`,
    `Subject: Report Domain: ${domain} Submitter: ${hostname} Report-ID: <${report['report-id']}>`,
    `Date: ${rfc5322Date(new Date(now))}`,
    `Message-ID: ${messageId}`,
    `TLS-Report-Domain: ${domain}`,
    `TLS-Report-Submitter: ${hostname}`,
    'MIME-Version: 1.0',
    `Content-Type: multipart/report; report-type="tlsrpt"; boundary="${boundary}"`,
    '',
    `--${boundary}`,
    'Content-Type: text/plain; charset=us-ascii',
    '',
    `This is an aggregate TLS report (RFC 8460) from ${hostname} for ${domain}, ${day} (UTC).`,
    '',
    `--${boundary}`,
    `Content-Type: application/tlsrpt+gzip; name="${filename}"`,
    `Content-Disposition: attachment; filename="${filename}"`,
    'Content-Transfer-Encoding: base64',
    '',
    ...(gzipped.toString('base64').match(/.{1,76}/g) ?? []),
    '',
    `--${boundary}--`,
    '',
  ];
  return { messageId, body: Buffer.from(lines.join(CRLF)) };
}
