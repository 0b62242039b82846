/** `relay credential ...`: SMTP AUTH logins, the sender domains each may use, and their rate limits and quotas. */
import { randomBytes } from 'node:crypto';
import type { Command } from 'commander';
import { hashPassword } from '../submission/password.js';
import { CliError, type Cli } from './context.js';
import { addLimitOptions, type LimitOptions, limitsFrom, limitsView, usedOf } from './credential-limits.js';
import { formatTime, print, printJson, printTable } from './output.js';
import { credentialName, domainName } from './validate.js';

/** 18 random bytes: 24 base64url characters, 144 bits. */
const newPassword = () => randomBytes(18).toString('base64url');

const collect = (value: string, previous: string[] | undefined) => [...(previous ?? []), value];

export function registerCredentialCommands(program: Command, cli: Cli): void {
  const credential = program.command('credential').description('SMTP AUTH credentials');

  addLimitOptions(
    credential
      .command('add <name>')
      .description('create a credential (username = name) with a random password, shown once')
      .requiredOption('--domain <domain>', 'sender domain it may use (repeat for several; add domains first with `relay domain add`)', collect),
  )
    .option('--json', 'print JSON')
    .action((input: string, opts: LimitOptions & { domain: string[]; json?: boolean }) =>
      cli.withStore((store) => {
        const name = credentialName(input);
        if (store.getCredential(name)) throw new CliError(`credential ${name} already exists (names of revoked credentials stay taken)`);
        const domains = [...new Set(opts.domain.map(domainName))];
        for (const domain of domains) {
          if (!store.getDomain(domain)) throw new CliError(`unknown domain ${domain}: add it first with \`relay domain add ${domain}\``);
        }
        const password = newPassword();
        store.addCredential({ name, username: name, passwordHash: hashPassword(password), domains });
        const limits = limitsFrom(opts);
        if (Object.keys(limits).length) store.setCredentialLimits(name, limits);
        if (opts.json) return printJson({ name, username: name, password, domains, limits: limitsView(store, name).limits });
        print(`Created credential ${name} for ${domains.join(', ')}.`);
        print(`  Username: ${name}`);
        print(`  Password: ${password}`);
        print('Store the password now: it will not be shown again.');
      }),
    );

  addLimitOptions(credential.command('update <name>').description('change a credential\'s rate limit and quotas (counted in recipients)'))
    .option('--json', 'print JSON')
    .action((name: string, opts: LimitOptions & { json?: boolean }) =>
      cli.withStore((store) => {
        if (!store.getCredential(name)) throw new CliError(`unknown credential ${name}`);
        const limits = limitsFrom(opts);
        if (Object.keys(limits).length === 0) throw new CliError('nothing to update: give --rate, --daily or --monthly');
        store.setCredentialLimits(name, limits);
        const view = limitsView(store, name).limits;
        if (opts.json) return printJson({ name, limits: view });
        print(`Updated credential ${name}: rate ${view.rate ?? 'unlimited'}, daily ${view.daily ?? 'unlimited'}, monthly ${view.monthly ?? 'unlimited'}.`);
      }),
    );

  credential
    .command('list')
    .description('list credentials (passwords are never shown)')
    .option('--json', 'print JSON')
    .action((opts: { json?: boolean }) =>
      cli.withStore((store) => {
        const credentials = store.listCredentials().map((c) => ({
          name: c.name,
          username: c.username,
          domains: c.domains,
          created: c.createdAt,
          revoked: c.revokedAt,
          ...limitsView(store, c.name),
        }));
        if (opts.json) return printJson(credentials);
        printTable(
          ['NAME', 'USERNAME', 'DOMAINS', 'RATE', 'TODAY', 'THIS MONTH', 'CREATED', 'REVOKED'],
          credentials.map((c) => [
            c.name,
            c.username,
            c.domains.join(','),
            c.limits.rate,
            usedOf(c.usage.today, c.limits.daily),
            usedOf(c.usage.this_month, c.limits.monthly),
            formatTime(c.created),
            formatTime(c.revoked),
          ]),
          'No credentials yet: create one with `relay credential add NAME --domain DOMAIN`.',
        );
      }),
    );

  credential
    .command('revoke <name>')
    .description('revoke a credential; logins with it fail from now on, also on a running relay')
    .action((name: string) =>
      cli.withStore((store) => {
        const existing = store.getCredential(name);
        if (!existing) throw new CliError(`unknown credential ${name}`);
        if (!store.revokeCredential(name)) throw new CliError(`credential ${name} was already revoked at ${formatTime(existing.revokedAt)}`);
        print(`Revoked credential ${name}.`);
      }),
    );
}
