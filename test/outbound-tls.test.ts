/**
 * Authenticated outbound TLS against loopback peers: MTA-STS policies served over HTTPS on
 * 127.0.8.1:443 with a test CA the relay trusts through delivery.tls_ca_file, DANE TLSA records
 * with the AD bit from the test DNS server, smtp-server sinks as MX hosts presenting certificates
 * of that CA (or self-signed ones), and TLS-RPT reports for a day the relay's clock moves past.
 */
import { createHash, randomUUID, X509Certificate } from 'node:crypto';
import { createRequire } from 'node:module';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { simpleParser } from 'mailparser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventRecord, Storage } from '../src/queue/storage.js';
import type { TlsReport } from '../src/outbound-tls/reports.js';
import { startDnsServer, type TestDnsServer } from './helpers/dns.js';
import { eventsOf } from './helpers/events.js';
import { addSenderDomain, startTestRelay, type TestRelay } from './helpers/relay.js';
import { startSinks, type Sink } from './helpers/sink.js';
import { createTestCa, type KeyPair, type TestCa } from './helpers/test-ca.js';
import { waitFor } from './helpers/wait.js';
import { partsOf } from '../src/envelope/header.js';

const require = createRequire(import.meta.url);
const { dkimVerify } = require('mailauth/lib/dkim/verify') as {
  dkimVerify: (
    msg: Buffer,
    opts: { resolver: (name: string, type: string) => Promise<unknown> },
  ) => Promise<{ results: { status: { result: string }; signingDomain: string }[] }>;
};

const HOSTS = { trusted: '127.0.8.2', selfSigned: '127.0.8.3', wrongName: '127.0.8.4', reports: '127.0.8.5' };
/** RFC 8461 fixes the policy host's port at 443; the tests run as root, as CI does. */
const POLICY_HOST = '127.0.8.1';

/** MX names that resolve to the sink with the CA-issued certificate, which names them all. */
const TRUSTED_MX = ['mx.enforce.test', 'mx.mismatch.test', 'mx.cached.test', 'mx.dane-ta.test', 'mx.verify.test', 'mx.report.test'];

let ca: TestCa;
let dns: TestDnsServer;
let sinks: Record<keyof typeof HOSTS, Sink>;
let selfSignedPair: KeyPair;
/** MTA-STS policy text by policy host name (mta-sts.DOMAIN). */
const policies = new Map<string, string>();
/** The policy host drops every connection. */
let outage = false;
let policyServer: Server;
/** TLS reports POSTed to the https rua, gunzipped. */
const posted: { contentType: string | undefined; report: TlsReport }[] = [];
let ruaServer: Server;

const policyText = (mode: string, mx: string[], maxAge = 86_400) =>
  ['version: STSv1', `mode: ${mode}`, ...mx.map((m) => `mx: ${m}`), `max_age: ${maxAge}`, ''].join('\r\n');

/** Publishes an MTA-STS policy for the domain: its TXT id, the HTTPS policy and the policy host's address. */
function publishPolicy(domain: string, id: string, mode: string, mx: string[]): void {
  dns.setZone(`_mta-sts.${domain}`, { txt: [`v=STSv1; id=${id}`] });
  dns.setZone(`mta-sts.${domain}`, { a: [POLICY_HOST] });
  policies.set(`mta-sts.${domain}`, policyText(mode, mx));
}

function mx(domain: string, host: string, address: string): void {
  dns.setZone(domain, { mx: [{ exchange: host, priority: 10 }] });
  dns.setZone(host, { a: [address] });
}

const spkiSha256 = (pem: string) =>
  createHash('sha256')
    .update(new X509Certificate(pem).publicKey.export({ type: 'spki', format: 'der' }))
    .digest();
const certSha256 = (pem: string) => createHash('sha256').update(new X509Certificate(pem).raw).digest();

function listen(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve((server.address() as AddressInfo).port));
  });
}

beforeAll(async () => {
  ca = createTestCa();
  selfSignedPair = ca.selfSigned(['mx.self.test']);
  const [trusted, selfSigned, wrongName, reports] = await startSinks([
    { host: HOSTS.trusted, starttls: true, tls: ca.issue(TRUSTED_MX) },
    { host: HOSTS.selfSigned, starttls: true, tls: selfSignedPair },
    { host: HOSTS.wrongName, starttls: true, tls: ca.issue(['other.test']) },
    { host: HOSTS.reports },
  ]);
  sinks = { trusted: trusted!, selfSigned: selfSigned!, wrongName: wrongName!, reports: reports! };
  dns = await startDnsServer({});

  const policyPair = ca.issue(
    ['enforce', 'testing', 'badcert', 'mismatch', 'cached', 'refresh', 'report'].map((d) => `mta-sts.${d}.test`).concat('rua.reports.test'),
  );
  policyServer = createServer({ key: policyPair.key, cert: policyPair.cert }, (req, res) => {
    if (outage) return void req.socket.destroy();
    const text = policies.get(String(req.headers.host));
    if (req.url !== '/.well-known/mta-sts.txt' || text === undefined) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'text/plain' }).end(text);
  });
  await listen(policyServer, POLICY_HOST, 443).catch((err: Error) => {
    throw new Error(`the MTA-STS policy server needs ${POLICY_HOST}:443 (run as root): ${err.message}`);
  });
  ruaServer = createServer({ key: policyPair.key, cert: policyPair.cert }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      posted.push({
        contentType: req.headers['content-type'],
        report: JSON.parse(gunzipSync(Buffer.concat(chunks)).toString()) as TlsReport,
      });
      res.writeHead(200).end();
    });
  });
  await listen(ruaServer, POLICY_HOST, 0);
}, 60_000);

afterAll(async () => {
  await Promise.all(Object.values(sinks ?? {}).map((s) => s.stop()));
  await dns?.stop();
  policyServer?.close();
  ruaServer?.close();
});

let offset = 0;
/** The relays' clock: the wall clock, moved forward by the tests. */
const clock = () => Date.now() + offset;

async function startRelay(delivery: Record<string, unknown> = {}): Promise<TestRelay> {
  return startTestRelay(
    {
      delivery: {
        paused: false,
        dns_servers: [dns.address],
        smtp_port: sinks.trusted.port,
        tls_ca_file: ca.file,
        // A deferred recipient is not tried again while a test looks at it.
        retry_schedule: ['1h'],
        ...delivery,
      },
    },
    { clock },
  );
}

async function submit(storage: Storage, to: string): Promise<string> {
  const queueId = randomUUID();
  const now = Date.now();
  const body = Buffer.from(
    `From: <alice@sender.test>\r\nTo: <${to}>\r\nSubject: ${queueId}\r\nMessage-ID: <${queueId}@sender.test>\r\n\r\nHello.\r\n`,
  );
  const result = await storage.queue.enqueue({
    queueId,
    messageId: `<${queueId}@sender.test>`,
    credential: 'test',
    mailFrom: 'alice@sender.test',
    recipients: [to],
    body: partsOf(body),
    receivedAt: now,
    expiresAt: now + 2 * 86_400_000,
  });
  expect(result).toEqual({ status: 'queued' });
  return queueId;
}

/** The first outcome (delivered, deferred or bounced) of the message's one recipient. */
async function outcome(storage: Storage, queueId: string): Promise<EventRecord> {
  return waitFor(async () => (await eventsOf(storage, { queueId })).find((e) => e.status !== 'queued'), `an outcome of ${queueId}`);
}

const received = (sink: Sink, queueId: string) => sink.messages.filter((m) => m.raw.includes(`Subject: ${queueId}`));

describe('MTA-STS', () => {
  let relay: TestRelay;

  beforeAll(async () => {
    publishPolicy('enforce.test', 'e1', 'enforce', ['mx.enforce.test']);
    mx('enforce.test', 'mx.enforce.test', HOSTS.trusted);
    publishPolicy('testing.test', 't1', 'testing', ['mx.testing.test']);
    mx('testing.test', 'mx.testing.test', HOSTS.selfSigned);
    publishPolicy('badcert.test', 'b1', 'enforce', ['mx.badcert.test']);
    mx('badcert.test', 'mx.badcert.test', HOSTS.wrongName);
    publishPolicy('mismatch.test', 'm1', 'enforce', ['mx.elsewhere.test']);
    mx('mismatch.test', 'mx.mismatch.test', HOSTS.trusted);
    mx('none.test', 'mx.none.test', HOSTS.selfSigned);
    relay = await startRelay();
  });

  afterAll(async () => {
    await relay?.stop();
  });

  it('enforce: delivers to a listed MX with a certificate valid for its name, and records it', async () => {
    const queueId = await submit(relay.storage, 'ann@enforce.test');
    const event = await outcome(relay.storage, queueId);
    expect(event.status).toBe('delivered');
    expect(event.tls).toEqual({ version: 'TLSv1.3', cipher: expect.any(String), verified: true, policy: 'sts' });
    expect(received(sinks.trusted, queueId)[0]!.secure).toBe(true);
    expect(await relay.storage.tlsPolicies.stsPolicy('enforce.test')).toMatchObject({
      id: 'e1',
      mode: 'enforce',
      mx: ['mx.enforce.test'],
      maxAge: 86_400,
    });
  });

  it('enforce: defers rather than deliver to an MX whose certificate is for another name', async () => {
    const queueId = await submit(relay.storage, 'bob@badcert.test');
    const event = await outcome(relay.storage, queueId);
    expect(event.status).toBe('deferred');
    expect(event.response).toBe(
      '4.7.5 certificate of mx.badcert.test not verified as the MTA-STS policy of badcert.test requires: the certificate is not for mx.badcert.test',
    );
    expect(received(sinks.wrongName, queueId)).toHaveLength(0);
  });

  it('enforce: defers rather than deliver to an MX the policy does not list', async () => {
    const queueId = await submit(relay.storage, 'cat@mismatch.test');
    const event = await outcome(relay.storage, queueId);
    expect(event.status).toBe('deferred');
    expect(event.response).toBe('4.7.5 mx.mismatch.test is not an MX host the MTA-STS policy of mismatch.test lists');
    expect(received(sinks.trusted, queueId)).toHaveLength(0);
  });

  it('testing: delivers despite an untrusted certificate, recorded as not verified', async () => {
    const queueId = await submit(relay.storage, 'dan@testing.test');
    const event = await outcome(relay.storage, queueId);
    expect(event.status).toBe('delivered');
    expect(event.tls).toMatchObject({ verified: false, policy: 'sts' });
    expect(received(sinks.selfSigned, queueId)).toHaveLength(1);
  });

  it('none: a domain without a policy gets opportunistic TLS', async () => {
    const queueId = await submit(relay.storage, 'eve@none.test');
    const event = await outcome(relay.storage, queueId);
    expect(event.status).toBe('delivered');
    expect(event.tls).toMatchObject({ version: 'TLSv1.3', verified: false, policy: 'none' });
  });

  it('keeps a known policy in force while the policy host is unreachable', async () => {
    publishPolicy('cached.test', 'c1', 'enforce', ['mx.cached.test']);
    mx('cached.test', 'mx.cached.test', HOSTS.trusted);
    const first = await submit(relay.storage, 'fay@cached.test');
    expect((await outcome(relay.storage, first)).tls).toMatchObject({ verified: true, policy: 'sts' });

    // A new policy is announced, but the policy host is down.
    outage = true;
    try {
      dns.setZone('_mta-sts.cached.test', { txt: ['v=STSv1; id=c2'] });
      offset += 60_000; // past the relay's short memory of lookups
      const second = await submit(relay.storage, 'gil@cached.test');
      const event = await outcome(relay.storage, second);
      expect(event.status).toBe('delivered');
      expect(event.tls).toMatchObject({ verified: true, policy: 'sts' });
      expect(await relay.storage.tlsPolicies.stsPolicy('cached.test')).toMatchObject({ id: 'c1', mode: 'enforce' });
      const counts = await relay.storage.tlsPolicies.takeTlsResults('9999-12-31');
      expect(counts.filter((c) => c.policyDomain === 'cached.test').map((c) => [c.resultType, c.mxHost])).toEqual(
        expect.arrayContaining([
          ['sts-policy-fetch-error', ''],
          ['success', 'mx.cached.test'],
        ]),
      );
    } finally {
      outage = false;
    }
  });

  it('refreshes a policy once half its max_age has passed, and stops using it once expired', async () => {
    publishPolicy('refresh.test', 'r1', 'enforce', ['mx.enforce.test']);
    mx('refresh.test', 'mx.enforce.test', HOSTS.trusted);
    await outcome(relay.storage, await submit(relay.storage, 'hep@refresh.test'));
    const fetched = (await relay.storage.tlsPolicies.stsPolicy('refresh.test'))!;

    // Same id, new content: fetched in the background once past half of max_age, while the known policy applies.
    policies.set('mta-sts.refresh.test', policyText('enforce', ['mx.enforce.test', 'mx2.refresh.test']));
    offset += 50_000_000;
    expect((await outcome(relay.storage, await submit(relay.storage, 'ivy@refresh.test'))).tls).toMatchObject({ policy: 'sts' });
    const refreshed = await waitFor(async () => {
      const p = await relay.storage.tlsPolicies.stsPolicy('refresh.test');
      return p && p.fetchedAt > fetched.fetchedAt ? p : undefined;
    }, 'the refreshed policy');
    expect(refreshed.mx).toEqual(['mx.enforce.test', 'mx2.refresh.test']);

    // Past max_age with the policy host down: an expired policy is not used.
    outage = true;
    try {
      dns.setZone('_mta-sts.refresh.test', { txt: ['v=STSv1; id=r2'] });
      offset += 90_000_000;
      expect((await outcome(relay.storage, await submit(relay.storage, 'joy@refresh.test'))).tls).toMatchObject({ policy: 'none' });
    } finally {
      outage = false;
    }
  });
});

describe('DANE', () => {
  let relay: TestRelay;
  const tlsaName = (host: string) => `_${sinks.trusted.port}._tcp.${host}`;

  beforeAll(async () => {
    relay = await startRelay();
  });

  afterAll(async () => {
    await relay?.stop();
  });

  it('DANE-EE 3 1 1: authenticates a self-signed certificate by its key', async () => {
    mx('dane-ee.test', 'mx.dane-ee.test', HOSTS.selfSigned);
    dns.setZone(tlsaName('mx.dane-ee.test'), {
      secure: true,
      tlsa: [{ usage: 3, selector: 1, matchingType: 1, data: spkiSha256(selfSignedPair.leaf) }],
    });
    const queueId = await submit(relay.storage, 'hal@dane-ee.test');
    const event = await outcome(relay.storage, queueId);
    expect(event.status).toBe('delivered');
    expect(event.tls).toEqual({ version: 'TLSv1.3', cipher: expect.any(String), verified: true, policy: 'dane' });
  });

  it('DANE-EE 3 0 1: matches the whole certificate', async () => {
    mx('dane-ee-full.test', 'mx.dane-ee-full.test', HOSTS.selfSigned);
    dns.setZone(tlsaName('mx.dane-ee-full.test'), {
      secure: true,
      tlsa: [{ usage: 3, selector: 0, matchingType: 1, data: certSha256(selfSignedPair.leaf) }],
    });
    const event = await outcome(relay.storage, await submit(relay.storage, 'ida@dane-ee-full.test'));
    expect(event.tls).toMatchObject({ verified: true, policy: 'dane' });
  });

  it('DANE-TA 2 0 1: authenticates a chain issued by the published authority, for the MX name', async () => {
    mx('dane-ta.test', 'mx.dane-ta.test', HOSTS.trusted);
    dns.setZone(tlsaName('mx.dane-ta.test'), {
      secure: true,
      tlsa: [{ usage: 2, selector: 0, matchingType: 1, data: certSha256(ca.pem) }],
    });
    const event = await outcome(relay.storage, await submit(relay.storage, 'jo@dane-ta.test'));
    expect(event.status).toBe('delivered');
    expect(event.tls).toMatchObject({ verified: true, policy: 'dane' });
  });

  it('defers when no TLSA record matches the certificate', async () => {
    mx('dane-bad.test', 'mx.dane-bad.test', HOSTS.selfSigned);
    dns.setZone(tlsaName('mx.dane-bad.test'), {
      secure: true,
      tlsa: [{ usage: 3, selector: 1, matchingType: 1, data: Buffer.alloc(32, 7) }],
    });
    const queueId = await submit(relay.storage, 'kim@dane-bad.test');
    const event = await outcome(relay.storage, queueId);
    expect(event.status).toBe('deferred');
    expect(event.response).toBe(
      '4.7.5 certificate of mx.dane-bad.test not verified as DANE requires: no TLSA record matches the certificate chain',
    );
    expect(received(sinks.selfSigned, queueId)).toHaveLength(0);
  });

  it('ignores TLSA records the resolver did not validate (no AD bit)', async () => {
    mx('dane-insecure.test', 'mx.dane-insecure.test', HOSTS.selfSigned);
    dns.setZone(tlsaName('mx.dane-insecure.test'), {
      secure: false,
      tlsa: [{ usage: 3, selector: 1, matchingType: 1, data: Buffer.alloc(32, 7) }],
    });
    const event = await outcome(relay.storage, await submit(relay.storage, 'lee@dane-insecure.test'));
    expect(event.status).toBe('delivered');
    expect(event.tls).toMatchObject({ verified: false, policy: 'none' });
  });

  it('defers when the TLSA lookup fails for now (SERVFAIL)', async () => {
    mx('dane-servfail.test', 'mx.dane-servfail.test', HOSTS.trusted);
    dns.setZone(tlsaName('mx.dane-servfail.test'), { rcode: 'SERVFAIL' });
    const queueId = await submit(relay.storage, 'max@dane-servfail.test');
    const event = await outcome(relay.storage, queueId);
    expect(event.status).toBe('deferred');
    expect(event.response).toBe('4.7.5 TLSA lookup for mx.dane-servfail.test failed temporarily (SERVFAIL)');
    expect(received(sinks.trusted, queueId)).toHaveLength(0);
  });
});

describe('delivery.tls modes', () => {
  it('verify: requires a certificate valid for the MX name', async () => {
    const relay = await startRelay({ tls: 'verify' });
    try {
      mx('verify.test', 'mx.verify.test', HOSTS.trusted);
      mx('verify-self.test', 'mx.verify-self.test', HOSTS.selfSigned);
      const good = await outcome(relay.storage, await submit(relay.storage, 'ned@verify.test'));
      expect(good.status).toBe('delivered');
      expect(good.tls).toMatchObject({ verified: true, policy: 'none' });
      const bad = await outcome(relay.storage, await submit(relay.storage, 'oli@verify-self.test'));
      expect(bad.status).toBe('deferred');
      expect(bad.response).toBe(
        '4.7.5 certificate of mx.verify-self.test not verified as delivery.tls: verify requires: the certificate is not from a trusted CA (DEPTH_ZERO_SELF_SIGNED_CERT)',
      );
    } finally {
      await relay.stop();
    }
  });

  it('dane: refuses a host without DANE records', async () => {
    const relay = await startRelay({ tls: 'dane' });
    try {
      mx('nodane.test', 'mx.nodane.test', HOSTS.trusted);
      const event = await outcome(relay.storage, await submit(relay.storage, 'pat@nodane.test'));
      expect(event.status).toBe('deferred');
      expect(event.response).toBe('4.7.5 mx.nodane.test has no usable DANE TLSA records (delivery.tls: dane)');
    } finally {
      await relay.stop();
    }
  });
});

describe('TLS-RPT', () => {
  it("sends a day's aggregate report to a mailto and an https rua", async () => {
    const relay = await startRelay();
    try {
      const ruaPort = (ruaServer.address() as AddressInfo).port;
      // The relay's host name is a sender domain: mailed reports are DKIM-signed with its key.
      const dkim = (await addSenderDomain(relay.storage, 'relay.test')).find((r) => r.purpose === 'dkim')!;
      publishPolicy('report.test', 'r1', 'testing', ['mx.report.test']);
      mx('report.test', 'mx.report.test', HOSTS.trusted);
      dns.setZone('_smtp._tls.report.test', {
        txt: [`v=TLSRPTv1; rua=mailto:tls@reports.test,https://rua.reports.test:${ruaPort}/tlsrpt`],
      });
      mx('reports.test', 'mx.reports.test', HOSTS.reports);
      dns.setZone('rua.reports.test', { a: [POLICY_HOST] });

      // Sessions under the STS policy that pass; then the MX host publishes DANE records its certificate does not match.
      const sessionsBefore = sinks.trusted.connections;
      for (const to of ['a@report.test', 'b@report.test']) {
        expect((await outcome(relay.storage, await submit(relay.storage, to))).tls).toMatchObject({ verified: true, policy: 'sts' });
      }
      const stsSessions = sinks.trusted.connections - sessionsBefore;
      const tlsa = [{ usage: 3, selector: 1, matchingType: 1, data: Buffer.alloc(32, 9) }];
      dns.setZone(`_${sinks.trusted.port}._tcp.mx.report.test`, { secure: true, tlsa });
      offset += 60_000; // past the relay's short memory of TLSA answers
      expect((await outcome(relay.storage, await submit(relay.storage, 'c@report.test'))).status).toBe('deferred');

      const day = new Date(clock()).toISOString().slice(0, 10);
      offset += 86_400_000;
      expect(await relay.tlsReports.sendDue()).toBe(2);

      const mail = await waitFor(() => sinks.reports.messages.find((m) => m.rcptTo.includes('tls@reports.test')), 'the mailed TLS report');
      const { results } = await dkimVerify(mail.raw, {
        resolver: async (name) => {
          if (name === dkim.name) return [[dkim.value]];
          throw Object.assign(new Error('no such record'), { code: 'ENOTFOUND' });
        },
      });
      expect(results.map((r) => [r.status.result, r.signingDomain])).toEqual([['pass', 'relay.test']]);
      const parsed = await simpleParser(mail.raw);
      expect(parsed.subject).toMatch(/^Report Domain: report\.test Submitter: relay\.test Report-ID: <.+>$/);
      expect(parsed.headers.get('tls-report-domain')).toBe('report.test');
      expect(parsed.headers.get('tls-report-submitter')).toBe('relay.test');
      expect(parsed.headers.get('content-type')).toMatchObject({ value: 'multipart/report', params: { 'report-type': 'tlsrpt' } });
      const attachment = parsed.attachments.find((a) => a.contentType === 'application/tlsrpt+gzip')!;
      expect(attachment.filename).toMatch(/^relay\.test!report\.test!\d+!\d+\.json\.gz$/);
      const report = JSON.parse(gunzipSync(attachment.content).toString()) as TlsReport;

      const expected = {
        'organization-name': 'relay.test',
        'date-range': { 'start-datetime': `${day}T00:00:00Z`, 'end-datetime': `${day}T23:59:59Z` },
        'contact-info': 'postmaster@relay.test',
        policies: [
          {
            policy: {
              'policy-type': 'sts',
              'policy-string': ['version: STSv1', 'mode: testing', 'mx: mx.report.test', 'max_age: 86400'],
              'policy-domain': 'report.test',
              'mx-host': ['mx.report.test'],
            },
            summary: { 'total-successful-session-count': stsSessions, 'total-failure-session-count': 0 },
            'failure-details': [],
          },
          {
            policy: {
              'policy-type': 'tlsa',
              'policy-string': [`3 1 1 ${'09'.repeat(32)}`],
              'policy-domain': 'report.test',
              'mx-host': ['mx.report.test'],
            },
            summary: { 'total-successful-session-count': 0, 'total-failure-session-count': 1 },
            'failure-details': [
              { 'result-type': 'validation-failure', 'receiving-mx-hostname': 'mx.report.test', 'failed-session-count': 1 },
            ],
          },
        ],
      };
      expect(report).toMatchObject(expected);
      const https = await waitFor(
        () => posted.find((p) => p.report.policies[0]?.policy['policy-domain'] === 'report.test'),
        'the POSTed TLS report',
      );
      expect(https.contentType).toBe('application/tlsrpt+gzip');
      expect(https.report).toMatchObject(expected);

      // A day is reported once.
      expect(await relay.tlsReports.sendDue()).toBe(0);
    } finally {
      await relay.stop();
    }
  });
});
