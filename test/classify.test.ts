/** The packaged bounce rules (config/bounce-rules.yaml) classify common replies, and bad rule files are refused clearly. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { classify, enhancedStatusOf, loadBounceRules, parseBounceRules, type BounceCategory } from '../src/bounces/classify.js';
import { PACKAGED_CONFIG_DIR } from '../src/config/load.js';

const rules = loadBounceRules(path.join(PACKAGED_CONFIG_DIR, 'bounce-rules.yaml'));

const codeOf = (reply: string) => (/^\d{3}/.test(reply) ? Number(reply.slice(0, 3)) : undefined);

const CASES: [reply: string, category: BounceCategory, permanent: boolean][] = [
  ['550 5.1.1 <x@y.test>: user unknown', 'bad_mailbox', true],
  [
    "550 5.1.1 The email account that you tried to reach does not exist. Please try double-checking the recipient's email address for typos or unnecessary spaces. https://support.google.com/mail/?p=NoSuchUser",
    'bad_mailbox',
    true,
  ],
  ['550 5.1.1 <bob@example.org>: Recipient address rejected: User unknown in virtual mailbox table', 'bad_mailbox', true],
  ['550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup', 'bad_mailbox', true],
  ['550 5.4.1 Recipient address rejected: Access denied. AS(201806281)', 'bad_mailbox', true],
  [
    "554 delivery error: dd This user doesn't have a yahoo.com account (bob@yahoo.com) [0] - mta1234.mail.ne1.yahoo.com",
    'bad_mailbox',
    true,
  ],
  ['550 5.2.1 The email account that you tried to reach is disabled.', 'bad_mailbox', true],
  // A 4xx stays temporary even when its text says the user is unknown.
  ['450 4.1.1 <bob@example.org>: Recipient address rejected: unverified address: user unknown', 'bad_mailbox', false],
  ['451 user unknown', 'bad_mailbox', false],
  ['452 4.2.2 mailbox full', 'mailbox_full', false],
  ['552 5.2.2 The email account that you tried to reach is over quota.', 'mailbox_full', true],
  ['554 5.0.0 Mailbox quota exceeded', 'mailbox_full', true],
  // Throttling and greylisting retry even with a 5xx code.
  ['550 5.7.1 Service temporarily unavailable, try again later', 'rate_limited', false],
  ['550 5.7.0 rate limit exceeded', 'rate_limited', false],
  ['451 4.7.1 Greylisted, see https://postgrey.schweikert.ch/help/example.org.html', 'rate_limited', false],
  [
    '421 4.7.28 Our system has detected an unusual rate of unsolicited mail originating from your IP address. To protect our users from spam, mail sent from your IP address has been temporarily rate limited.',
    'rate_limited',
    false,
  ],
  ['421 4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred due to unexpected volume or user complaints', 'rate_limited', false],
  [
    '450 4.2.1 The user you are trying to contact is receiving mail at a rate that prevents additional messages from being delivered.',
    'rate_limited',
    false,
  ],
  // Policy and blocklists.
  ['550 5.7.1 Service unavailable, Client host [192.0.2.1] blocked using Spamhaus', 'policy', true],
  [
    "550 5.7.1 Unfortunately, messages from [192.0.2.1] weren't sent. Please contact your Internet service provider since part of their network is on our block list (S3150).",
    'policy',
    true,
  ],
  ["553 5.7.1 [BL21] Connections will not be accepted from 192.0.2.1, because the ip is in Spamhaus's list", 'policy', true],
  ['554 5.7.9 Message not accepted for policy reasons.', 'policy', true],
  [
    '550 5.7.26 This mail has been blocked because the sender is unauthenticated. Gmail requires all senders to authenticate with either SPF or DKIM.',
    'policy',
    true,
  ],
  ['554 5.7.1 <bob@example.org>: Relay access denied', 'policy', true],
  ['450 4.1.8 <alice@acme.test>: Sender address rejected: Domain not found', 'policy', false],
  ['550 5.7.0 not allowed', 'policy', true],
  // Content.
  ['550 5.7.1 Our system has detected that this message is likely unsolicited mail.', 'content', true],
  ['552 5.7.0 This message was blocked because its content presents a potential security issue.', 'content', true],
  ['552 5.3.4 Message size exceeds fixed limit', 'content', true],
  // Relay's own verdicts.
  ['550 5.1.10 recipient domain example.test accepts no mail (null MX)', 'bad_domain', true],
  ['550 5.1.2 recipient domain nx.test does not exist (NXDOMAIN)', 'bad_domain', true],
  ['550 5.4.4 no usable mail host for dangling.test: MX hosts resolve to no address', 'bad_domain', true],
  ['451 4.4.3 DNS MX lookup for broken.test failed temporarily (ESERVFAIL)', 'other', false],
  ['4.4.1 mx.example.test[192.0.2.9]:25: connect ECONNREFUSED 192.0.2.9:25', 'other', false],
  ['4.7.10 TLS required but mx.example.test does not offer STARTTLS', 'policy', false],
  // Nothing matches.
  ['554 5.0.0 something odd', 'other', true],
  ['421 closing connection', 'other', false],
];

describe('default bounce rules', () => {
  it.each(CASES)('%s', (reply, category, permanent) => {
    expect(classify(rules, codeOf(reply), reply)).toEqual({ category, permanent });
  });

  it('has about twenty rules', () => {
    expect(rules.length).toBeGreaterThanOrEqual(18);
  });
});

describe('classify', () => {
  const custom = parseBounceRules(
    {
      rules: [
        { status: '4.2.2', category: 'mailbox_full', permanent: true },
        { match: 'first', category: 'policy' },
        { match: 'first|second', category: 'content' },
        { status: '5.7.*', match: 'dmarc', category: 'policy' },
      ],
    },
    'inline',
  );

  it('lets a rule make a 4xx permanent', () => {
    expect(classify(custom, 452, '452 4.2.2 over quota')).toEqual({ category: 'mailbox_full', permanent: true });
  });

  it('takes the first matching rule', () => {
    expect(classify(custom, 550, '550 first and second')).toEqual({ category: 'policy', permanent: true });
    expect(classify(custom, 550, '550 second')).toEqual({ category: 'content', permanent: true });
  });

  it('needs both status and match when a rule has both', () => {
    expect(classify(custom, 550, '550 5.7.1 DMARC failed').category).toBe('policy');
    expect(classify(custom, 550, '550 5.7.1 spf failed').category).toBe('other');
    expect(classify(custom, 550, '550 5.1.1 dmarc').category).toBe('other');
  });

  it('falls back on the enhanced class when there is no reply code', () => {
    expect(classify([], undefined, '5.3.4 message too big').permanent).toBe(true);
    expect(classify([], undefined, 'connection reset').permanent).toBe(false);
  });
});

describe('enhancedStatusOf', () => {
  it('reads the code after the reply code, or the first one in the text', () => {
    expect(enhancedStatusOf('550 5.1.1 user unknown')).toBe('5.1.1');
    expect(enhancedStatusOf('550-5.7.26 unauthenticated')).toBe('5.7.26');
    expect(enhancedStatusOf('550 Requested action not taken: 5.1.10 not found')).toBe('5.1.10');
  });

  it('does not mistake an IP address for one', () => {
    expect(enhancedStatusOf('554 blocked [5.6.7.8]')).toBeUndefined();
    expect(enhancedStatusOf('554 client 192.4.2.1 refused')).toBeUndefined();
  });
});

describe('loadBounceRules', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'relay-rules-'));
  const write = (name: string, text: string) => {
    const file = path.join(dir, name);
    writeFileSync(file, text);
    return file;
  };

  it('names the file and the rule when a rule is invalid', () => {
    const file = write(
      'bad.yaml',
      'rules:\n  - { status: "5.1.1", category: lost }\n  - { match: "(unclosed", category: other }\n  - { category: other }\n',
    );
    expect(() => loadBounceRules(file)).toThrowError(file);
    expect(() => loadBounceRules(file)).toThrowError(/rules\.0\.category/);
    expect(() => loadBounceRules(file)).toThrowError(/rules\.1\.match: invalid regular expression/);
    expect(() => loadBounceRules(file)).toThrowError(/a rule needs "status", "match" or both/);
  });

  it('refuses a bad status pattern and unknown keys', () => {
    const file = write('keys.yaml', 'rules:\n  - { status: "5.1", category: other }\n  - { match: x, category: other, permanant: true }\n');
    expect(() => loadBounceRules(file)).toThrowError(/rules\.0\.status: expected an enhanced status code pattern/);
    expect(() => loadBounceRules(file)).toThrowError(/rules\.1.*permanant/);
  });

  it('reports YAML errors and missing files with the path', () => {
    const file = write('broken.yaml', 'rules: [\n');
    expect(() => loadBounceRules(file)).toThrowError(new RegExp(`${file.replace(/[.\\/]/g, '\\$&')}: invalid YAML`));
    expect(() => loadBounceRules(path.join(dir, 'missing.yaml'))).toThrowError(/cannot read bounce rules .*missing\.yaml: ENOENT/);
  });
});
