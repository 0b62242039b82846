/** `relay domain ...`: sender domains, their DKIM keys, and the DNS records that prove and protect them. */
import { Option, type Command } from 'commander';
import { createResolver } from '../delivery/resolver.js';
import { activateIfAuto, checkKeys, generateKeys, type KeyAlgorithmChoice } from '../domains/dkim-keys.js';
import { dkimName, dkimValue, dnsRecords, newVerificationToken, type DnsRecord } from '../domains/records.js';
import { verifyDomain } from '../domains/verify.js';
import type { DomainRecord, Storage } from '../queue/storage.js';
import { CliError, type Cli } from './context.js';
import { keyJson, printKeys, registerDomainKeyCommands } from './domain-keys.js';
import { printRecords, printVerification } from './domain-output.js';
import { formatTime, isoTime, print, printJson, printTable } from './output.js';
import { domainName, selectorName } from './validate.js';

/**
 * `relay` + year and month (e.g. relay202611): a dated selector lets a later key rotation
 * publish the new key beside the old one instead of replacing it while mail is in flight.
 */
function defaultSelector(): string {
  const now = new Date();
  return `relay${now.getUTCFullYear()}${String(now.getUTCMonth() + 1).padStart(2, '0')}`;
}

async function requireDomain(storage: Storage, input: string): Promise<DomainRecord> {
  const name = domainName(input);
  const domain = await storage.domains.get(name);
  if (!domain) throw new CliError(`unknown domain ${name}: add it with \`relay domain add ${name}\``);
  return domain;
}

/** The domain's records, with a DKIM record for each further key beside the one on the domain row. */
function withKeyRecords(
  records: DnsRecord[],
  keys: { domain: string; selector: string; algorithm: 'rsa' | 'ed25519'; publicKey: string }[],
): DnsRecord[] {
  const shown = new Set(records.map((r) => r.name));
  const extra: DnsRecord[] = keys
    .map((k) => ({ type: 'TXT' as const, name: dkimName(k.domain, k.selector), value: dkimValue(k), purpose: 'dkim' as const }))
    .filter((r) => !shown.has(r.name));
  const at = records.findIndex((r) => r.purpose === 'dkim') + 1;
  return [...records.slice(0, at), ...extra, ...records.slice(at)];
}

export function registerDomainCommands(program: Command, cli: Cli): void {
  const domain = program.command('domain').description('sender domains: DKIM keys and DNS records');

  domain
    .command('add <domain>')
    .description('add a sender domain, generate its DKIM key and print the DNS records to publish')
    .option('--selector <selector>', `DKIM selector (default: relay + year and month, e.g. ${defaultSelector()})`)
    .addOption(
      new Option('--algorithm <algorithm>', 'DKIM key type; both signs with RSA and Ed25519 together')
        .choices(['rsa', 'ed25519', 'both'])
        .default('rsa'),
    )
    .option('--json', 'print JSON')
    .action((input: string, opts: { selector?: string; algorithm: KeyAlgorithmChoice; json?: boolean }) =>
      cli.withStorage(async (storage, config) => {
        const name = domainName(input);
        const selector = selectorName(opts.selector ?? defaultSelector());
        if (await storage.domains.get(name)) {
          throw new CliError(`domain ${name} already exists: see its records with \`relay domain records ${name}\``);
        }
        const [first, ...more] = generateKeys(name, selector, opts.algorithm, 'active');
        const added = { ...first!, name, verificationToken: newVerificationToken() };
        await storage.domains.add(added);
        if (more.length > 0) await storage.dkimKeys.add(more, Date.now());
        const records = withKeyRecords(dnsRecords(added, config.hostname), more);
        if (opts.json) {
          const keys = (await storage.dkimKeys.list(name)).map(keyJson);
          return printJson({ domain: name, selector: added.selector, records, keys });
        }
        const keys = [first!, ...more].map((k) => `selector ${k.selector}, ${k.algorithm} key`).join('; ');
        printRecords(added, records, `Added ${name} (DKIM ${keys}).`);
      }),
    );

  domain
    .command('verify <domain>')
    .description("check the domain's DNS records; sending is allowed once the ownership record is found")
    .option('--json', 'print JSON')
    .action((input: string, opts: { json?: boolean }) =>
      cli.withStorage(async (storage, config) => {
        const record = await requireDomain(storage, input);
        const resolver = createResolver(config);
        const { verified, checks } = await verifyDomain(record, resolver, config.hostname);
        // A failed lookup proves nothing either way, so it must not revoke an earlier verification.
        const lookupFailed = checks.verification.status === 'error';
        await storage.domains.setVerification(record.name, lookupFailed ? record.verified : verified, checks);
        const now = Date.now();
        const keyChecks = await checkKeys(storage.dkimKeys, resolver, record.name, now);
        const activated = await activateIfAuto(storage.dkimKeys, record.name, keyChecks, { now, retireAfter: config.signing.retire_after });
        const keys = await storage.dkimKeys.list(record.name);
        if (opts.json) printJson({ domain: record.name, verified, checks, keys: keys.map(keyJson) });
        else {
          printVerification(record, verified, checks, lookupFailed);
          if (activated.length > 0)
            print(`\nThe new DKIM key is published and now signs (${activated.map((k) => k.selector).join(', ')}).`);
          print();
          printKeys(keys);
        }
        if (!verified) process.exitCode = 1;
      }),
    );

  domain
    .command('list')
    .description('list sender domains')
    .option('--json', 'print JSON')
    .action((opts: { json?: boolean }) =>
      cli.withStorage(async (storage) => {
        const domains = (await storage.domains.list()).map((d) => ({
          name: d.name,
          selector: d.selector,
          algorithm: d.algorithm,
          verified: d.verified,
          created: isoTime(d.createdAt),
        }));
        if (opts.json) return printJson(domains);
        printTable(
          ['DOMAIN', 'SELECTOR', 'ALGORITHM', 'VERIFIED', 'CREATED'],
          domains.map((d) => [d.name, d.selector, d.algorithm, d.verified ? 'yes' : 'no', formatTime(d.created)]),
          'No domains yet: add one with `relay domain add DOMAIN`.',
        );
      }),
    );

  domain
    .command('records <domain>')
    .description('print the DNS records to publish for a domain')
    .option('--json', 'print JSON')
    .action((input: string, opts: { json?: boolean }) =>
      cli.withStorage(async (storage, config) => {
        const record = await requireDomain(storage, input);
        const keys = await storage.dkimKeys.list(record.name);
        const records = withKeyRecords(
          dnsRecords(record, config.hostname),
          keys.filter((k) => k.state !== 'retired'),
        );
        if (opts.json) return printJson({ domain: record.name, selector: record.selector, records, keys: keys.map(keyJson) });
        printRecords(record, records);
        print();
        print('DKIM keys:');
        printKeys(keys);
      }),
    );

  registerDomainKeyCommands(domain, cli);

  domain
    .command('remove <domain>')
    .description('remove a domain and its DKIM key; credentials can no longer send from it')
    .action((input: string) =>
      cli.withStorage(async (storage) => {
        const name = domainName(input);
        if (!(await storage.domains.remove(name))) throw new CliError(`unknown domain ${name}`);
        print(`Removed ${name}. Its DNS records can now be deleted.`);
      }),
    );
}
