/** `relay domain ...`: sender domains, their DKIM keys, and the DNS records that prove and protect them. */
import { Option, type Command } from 'commander';
import { createResolver } from '../delivery/resolver.js';
import { activateIfAuto, checkKeys, type KeyAlgorithmChoice } from '../domains/dkim-keys.js';
import { addDomain, checkDomain, defaultSelector, removeDomain, requireDomain, withKeyRecords } from '../domains/manage.js';
import { dnsRecords, returnPathRecords } from '../domains/records.js';
import type { RelayConfig } from '../config/schema.js';
import { type Cli } from './context.js';
import { keyJson, printKeys, registerDomainKeyCommands } from './domain-keys.js';
import { printRecords, printReturnPathRecords, printVerification } from './domain-output.js';
import { formatTime, isoTime, print, printJson, printTable } from './output.js';

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
      cli.withStorage(async (storage, config, audit) => {
        const { domain: added, keys, records } = await addDomain(storage, config.hostname, { name: input, ...opts });
        await audit.record({ actor: cli.actor(), action: 'domain.add', target: added.name, change: { keys } });
        const returnPath = returnPathOf(config);
        if (opts.json) {
          const stored = (await storage.dkimKeys.list(added.name)).map(keyJson);
          return printJson({
            domain: added.name,
            selector: added.selector,
            records,
            keys: stored,
            ...(returnPath && { return_path: returnPath }),
          });
        }
        const described = keys.map((k) => `selector ${k.selector}, ${k.algorithm} key`).join('; ');
        printRecords(added, records, `Added ${added.name} (DKIM ${described}).`);
        if (returnPath) printReturnPathRecords(config.bounces.return_path_domain!, returnPath);
      }),
    );

  domain
    .command('verify <domain>')
    .description("check the domain's DNS records; sending is allowed once the ownership record is found")
    .option('--json', 'print JSON')
    .action((input: string, opts: { json?: boolean }) =>
      cli.withStorage(async (storage, config, audit) => {
        const resolver = createResolver(config);
        const { domain: record, verified, checks, lookupFailed } = await checkDomain(storage.domains, resolver, config.hostname, input);
        const now = Date.now();
        const keyChecks = await checkKeys(storage.dkimKeys, resolver, record.name, now);
        const activated = await activateIfAuto(storage.dkimKeys, record.name, keyChecks, { now, retireAfter: config.signing.retire_after });
        await audit.record({
          actor: cli.actor(),
          action: 'domain.verify',
          target: record.name,
          change: { verified, lookup_failed: lookupFailed, ...(activated.length > 0 && { activated: activated.map((k) => k.selector) }) },
        });
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
        const record = await requireDomain(storage.domains, input);
        const keys = await storage.dkimKeys.list(record.name);
        const records = withKeyRecords(
          dnsRecords(record, config.hostname),
          keys.filter((k) => k.state !== 'retired'),
        );
        const returnPath = returnPathOf(config);
        if (opts.json)
          return printJson({
            domain: record.name,
            selector: record.selector,
            records,
            keys: keys.map(keyJson),
            ...(returnPath && { return_path: returnPath }),
          });
        printRecords(record, records);
        print();
        print('DKIM keys:');
        printKeys(keys);
        if (returnPath) printReturnPathRecords(config.bounces.return_path_domain!, returnPath);
      }),
    );

  registerDomainKeyCommands(domain, cli);

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

const returnPathOf = (config: RelayConfig) =>
  config.bounces.return_path_domain ? returnPathRecords(config.bounces.return_path_domain, config.hostname) : undefined;
