/** The traffic shaping rules: the packaged defaults load and match the large providers, an operator's file overlays them, and bad files are refused naming the rule. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/load.js';
import { DestinationMatcher, isSlowdown } from '../src/shaping/match.js';
import { loadShapingRules, PACKAGED_SHAPING_RULES, shapingRulesFor, ShapingRulesError } from '../src/shaping/rules.js';

const dir = mkdtempSync(path.join(tmpdir(), 'relay-shaping-rules-'));
function file(name: string, text: string): string {
  const at = path.join(dir, name);
  writeFileSync(at, text);
  return at;
}

describe('packaged shaping rules', () => {
  const rules = loadShapingRules();
  const matcher = new DestinationMatcher(rules);

  it('name the large mailbox providers, matched by domain and by MX host', () => {
    expect(rules.sources).toEqual([PACKAGED_SHAPING_RULES]);
    expect(rules.destinations.map((d) => d.name)).toEqual(['gmail', 'outlook', 'yahoo', 'icloud', 'gmx', 'mailru', 'yandex']);
    expect(matcher.byRecipientDomain('gmail.com')?.name).toBe('gmail');
    expect(matcher.byMxHosts(['aspmx.l.google.com.'])?.name).toBe('gmail');
    expect(matcher.byMxHosts(['acme-com.mail.protection.outlook.com'])?.name).toBe('outlook');
    expect(matcher.byMxHosts(['mta7.am0.yahoodns.net'])?.name).toBe('yahoo');
    expect(matcher.byMxHosts(['mx01.mail.icloud.com'])?.name).toBe('icloud');
    expect(matcher.byMxHosts(['mx-ha03.web.de'])?.name).toBe('gmx');
    expect(matcher.byMxHosts(['mx.example.org', 'backup.googlemail.com'])?.name).toBe('gmail');
    expect(matcher.byMxHosts(['mx.notgoogle.com'])).toBeUndefined();
  });

  it.each([
    ['421 4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred due to unexpected volume or user complaints', 421],
    ['421 4.7.28 Our system has detected an unusual rate of unsolicited mail originating from your IP address.', 421],
    ['421 4.7.0 Try again later, closing connection.', 421],
    ['451 4.7.500 Server busy. Please try again later from [192.0.2.1]. (S77714)', 451],
    ['451 4.7.650 The mail server [192.0.2.1] has been temporarily rate limited due to IP reputation.', 451],
    [
      '450 4.2.1 The user you are trying to contact is receiving mail at a rate that prevents additional messages from being delivered.',
      450,
    ],
  ])('call %s a slow-down', (reply, code) => {
    expect(isSlowdown(rules.slowdown, code, reply)).toBe(true);
  });

  it.each([
    ['450 4.2.0 mailbox busy', 450],
    ['451 4.3.0 temporary local problem', 451],
    ['550 5.1.1 user unknown', 550],
  ])('do not call %s a slow-down', (reply, code) => {
    expect(isSlowdown(rules.slowdown, code, reply)).toBe(false);
  });
});

describe("an operator's shaping rules", () => {
  it('change a packaged destination by its provider name, add destinations, slow-down rules and adaptive settings', () => {
    const own = file(
      'own.yaml',
      [
        'adaptive: { suspend: 5m }',
        'slowdown:',
        '  - match: "slow down please"',
        'destinations:',
        '  - { name: gmail, max_connections: 2, tls: verify }',
        '  - { name: partner, domains: [partner.example], mx_suffixes: [.mx.partner.example], max_connections: 1, tls: dane }',
      ].join('\n'),
    );
    const rules = loadShapingRules({ rules: own });
    expect(rules.sources).toEqual([PACKAGED_SHAPING_RULES, own]);
    const gmail = rules.destinations.find((d) => d.name === 'gmail')!;
    expect(gmail).toMatchObject({ maxConnections: 2, messagesPerConnection: 50, tls: 'verify', domains: ['gmail.com', 'googlemail.com'] });
    expect(rules.destinations.at(-1)).toMatchObject({ name: 'partner', mxSuffixes: ['mx.partner.example'], tls: 'dane' });
    expect(rules.adaptive).toMatchObject({ suspendMs: 300_000, cut: 0.5 });
    expect(isSlowdown(rules.slowdown, 452, '452 slow down please')).toBe(true);
    expect(isSlowdown(rules.slowdown, 421, '421 bye')).toBe(true);
  });

  it('replace the packaged ones with packaged_rules: false; the path is relative to the config file', () => {
    file('mine.yaml', 'destinations:\n  - { name: only, domains: [only.example] }\n');
    const config = loadConfig(file('relay.yaml', 'shaping: { rules: ./mine.yaml, packaged_rules: false }\n'));
    expect(config.shaping.rules).toBe(path.join(dir, 'mine.yaml'));
    expect(shapingRulesFor(config).destinations.map((d) => d.name)).toEqual(['only']);
  });

  it.each([
    ['destinations:\n  - { name: gmail, max_connections: 0 }\n', /destinations\.0 \(gmail\)\.max_connections: .*(>0|greater than 0)/],
    ['destinations:\n  - { name: fast, domains: [fast.example], tls: sometimes }\n', /destinations\.0 \(fast\)\.tls: .*"opportunistic"/],
    [
      'destinations:\n  - { name: fast, domains: [fast.example], messages_per_minute: lots }\n',
      /destinations\.0 \(fast\)\.messages_per_minute/,
    ],
    ['destinations:\n  - { name: Fast, domains: [fast.example] }\n', /destinations\.0 \(Fast\)\.name: lower-case/],
    ['destinations:\n  - { name: fast, domains: [fast.example], max_conns: 3 }\n', /destinations\.0 \(fast\): .*max_conns/],
    ['destinations:\n  - { name: nothing, max_connections: 3 }\n', /destination nothing needs "domains" or "mx_suffixes"/],
    ['destinations:\n  - { name: mine, domains: [gmail.com] }\n', /domain gmail\.com is in destinations gmail and mine/],
    ['destinations:\n  - { name: a, domains: [a.example] }\n  - { name: a, domains: [b.example] }\n', /destination a is listed twice/],
    ['slowdown:\n  - { note: nothing to match }\n', /slowdown\.0: a slow-down rule needs "code", "status" or "match"/],
    ['slowdown:\n  - { match: "(" }\n', /slowdown\.0\.match: invalid regular expression/],
    ['adaptive: { cut: 2 }\n', /adaptive\.cut/],
    ['adaptive: { suspend: soon }\n', /adaptive\.suspend: "soon" is not a duration/],
    ['destinations: [\n', /invalid YAML/],
  ])('refuse %j, naming the file and the rule', (text, message) => {
    const bad = file('bad.yaml', text);
    let error: unknown;
    try {
      loadShapingRules({ rules: bad });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ShapingRulesError);
    expect((error as Error).message).toContain(bad);
    expect((error as Error).message).toMatch(message);
  });

  it('refuse a file that cannot be read', () => {
    expect(() => loadShapingRules({ rules: path.join(dir, 'missing.yaml') })).toThrow(/cannot read shaping rules .*missing\.yaml: ENOENT/);
  });
});
