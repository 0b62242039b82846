/** `relay domain ...`: sender domains, their DKIM keys, and the DNS records that prove and protect them. */
import { Option, type Command } from 'commander';
import { createResolver } from '../delivery/resolver.js';
import { addDomain, checkDomain, defaultSelector, removeDomain, requireDomain } from '../domains/manage.js';
import { dnsRecords } from '../domains/records.js';
import { type Cli } from './context.js';
import { printRecords, printVerification } from './domain-output.js';
import { formatTime, isoTime, print, printJson, printTable } from './output.js';

export function registerDomainCommands(program: Command, cli: Cli): void {
  const domain = program.command('domain').description('sender domains: DKIM keys and DNS records');

  domain
    .command('add <domain>')
    .description('add a sender domain, generate its DKIM key and print the DNS records to publish')
    .option('--selector <selector>', `DKIM selector (default: relay + year and month, e.g. ${defaultSelector()})`)
    .addOption(new Option('--algorithm <algorithm>', 'DKIM key type').choices(['rsa', 'ed25519']).default('rsa'))
    .option('--json', 'print JSON')
    .action((input: string, opts: { selector?: string; algorithm: 'rsa' | 'ed25519'; json?: boolean }) =>
      cli.withStorage(async (storage, config, audit) => {
        const { domain: added, records } = await addDomain(storage.domains, config.hostname, { name: input, ...opts });
        await audit.record({
          actor: cli.actor(),
          action: 'domain.add',
          target: added.name,
          change: { selector: added.selector, algorithm: added.algorithm },
        });
        if (opts.json) return printJson({ domain: added.name, selector: added.selector, records });
        printRecords(added, records, `Added ${added.name} (DKIM selector ${added.selector}, ${added.algorithm} key).`);
      }),
    );

  domain
    .command('verify <domain>')
    .description("check the domain's DNS records; sending is allowed once the ownership record is found")
    .option('--json', 'print JSON')
    .action((input: string, opts: { json?: boolean }) =>
      cli.withStorage(async (storage, config, audit) => {
        const {
          domain: record,
          verified,
          checks,
          lookupFailed,
        } = await checkDomain(storage.domains, createResolver(config), config.hostname, input);
        await audit.record({
          actor: cli.actor(),
          action: 'domain.verify',
          target: record.name,
          change: { verified, lookup_failed: lookupFailed },
        });
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
        const record = await requireDomain(storage.domains, input);
        const records = dnsRecords(record, config.hostname);
        if (opts.json) return printJson({ domain: record.name, selector: record.selector, records });
        printRecords(record, records);
      }),
    );

  domain
    .command('remove <domain>')
    .description('remove a domain and its DKIM key; credentials can no longer send from it')
    .action((input: string) =>
      cli.withStorage(async (storage, _config, audit) => {
        const name = await removeDomain(storage.domains, input);
        await audit.record({ actor: cli.actor(), action: 'domain.remove', target: name });
        print(`Removed ${name}. Its DNS records can now be deleted.`);
      }),
    );
}
