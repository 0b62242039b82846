/** `relay domain ...`: sender domains, their DKIM keys, and the DNS records that prove and protect them. */
import { Option, type Command } from 'commander';
import { createResolver } from '../delivery/resolver.js';
import { dnsRecords, newVerificationToken, returnPathRecords } from '../domains/records.js';
import type { RelayConfig } from '../config/schema.js';
import { verifyDomain } from '../domains/verify.js';
import type { DomainRecord, Storage } from '../queue/storage.js';
import { generateDkimKey } from '../signing/keys.js';
import { CliError, type Cli } from './context.js';
import { printRecords, printReturnPathRecords, printVerification } from './domain-output.js';
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

export function registerDomainCommands(program: Command, cli: Cli): void {
  const domain = program.command('domain').description('sender domains: DKIM keys and DNS records');

  domain
    .command('add <domain>')
    .description('add a sender domain, generate its DKIM key and print the DNS records to publish')
    .option('--selector <selector>', `DKIM selector (default: relay + year and month, e.g. ${defaultSelector()})`)
    .addOption(new Option('--algorithm <algorithm>', 'DKIM key type').choices(['rsa', 'ed25519']).default('rsa'))
    .option('--json', 'print JSON')
    .action((input: string, opts: { selector?: string; algorithm: 'rsa' | 'ed25519'; json?: boolean }) =>
      cli.withStorage(async (storage, config) => {
        const name = domainName(input);
        const selector = selectorName(opts.selector ?? defaultSelector());
        if (await storage.domains.get(name)) {
          throw new CliError(`domain ${name} already exists: see its records with \`relay domain records ${name}\``);
        }
        const { privateKeyPem, publicKey } = generateDkimKey(opts.algorithm);
        const added = { name, selector, algorithm: opts.algorithm, privateKeyPem, publicKey, verificationToken: newVerificationToken() };
        await storage.domains.add(added);
        const records = dnsRecords(added, config.hostname);
        const returnPath = returnPathOf(config);
        if (opts.json) return printJson({ domain: name, selector, records, ...(returnPath && { return_path: returnPath }) });
        printRecords(added, records, `Added ${name} (DKIM selector ${selector}, ${opts.algorithm} key).`);
        if (returnPath) printReturnPathRecords(config.bounces.return_path_domain!, returnPath);
      }),
    );

  domain
    .command('verify <domain>')
    .description("check the domain's DNS records; sending is allowed once the ownership record is found")
    .option('--json', 'print JSON')
    .action((input: string, opts: { json?: boolean }) =>
      cli.withStorage(async (storage, config) => {
        const record = await requireDomain(storage, input);
        const { verified, checks } = await verifyDomain(record, createResolver(config), config.hostname);
        // A failed lookup proves nothing either way, so it must not revoke an earlier verification.
        const lookupFailed = checks.verification.status === 'error';
        await storage.domains.setVerification(record.name, lookupFailed ? record.verified : verified, checks);
        if (opts.json) printJson({ domain: record.name, verified, checks });
        else printVerification(record, verified, checks, lookupFailed);
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
        const records = dnsRecords(record, config.hostname);
        const returnPath = returnPathOf(config);
        if (opts.json)
          return printJson({ domain: record.name, selector: record.selector, records, ...(returnPath && { return_path: returnPath }) });
        printRecords(record, records);
        if (returnPath) printReturnPathRecords(config.bounces.return_path_domain!, returnPath);
      }),
    );

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

const returnPathOf = (config: RelayConfig) =>
  config.bounces.return_path_domain ? returnPathRecords(config.bounces.return_path_domain, config.hostname) : undefined;
