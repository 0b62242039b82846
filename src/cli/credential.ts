/** `relay credential ...`: SMTP AUTH logins, the sender domains each may use, and their rate limits and quotas. */
import { randomBytes } from 'node:crypto';
import type { Command } from 'commander';
import { hashApiKey, newApiKey } from '../submission/api-keys.js';
import type { Storage } from '../queue/storage.js';
import { hashPassword } from '../submission/password.js';
import { CliError, type Cli } from './context.js';
import { addLimitOptions, type LimitOptions, limitsFrom, limitsView, usedOf } from './credential-limits.js';
import { formatTime, isoTime, print, printJson, printTable } from './output.js';
import { credentialName, domainName } from './validate.js';

/** 18 random bytes: 24 base64url characters, 144 bits. */
const newPassword = () => randomBytes(18).toString('base64url');

const collect = (value: string, previous: string[] | undefined) => [...(previous ?? []), value];

export function registerCredentialCommands(program: Command, cli: Cli): void {
  const credential = program.command('credential').description('SMTP AUTH credentials');

  addLimitOptions(
    credential
      .command('add <name>')
      .description('create a credential (username = name) with a random password, shown once; with --api-key also an HTTP API key')
      .option(
        '--domain <domain>',
        'sender domain it may use (repeat for several; add domains first with `relay domain add`); required for a new credential',
        collect,
      ),
  )
    .option('--api-key', 'also issue an HTTP API key, shown once; for an existing credential, issue another key')
    .option('--list-unsubscribe', 'add one-click unsubscribe headers (RFC 8058) to its messages')
    .option('--json', 'print JSON')
    .action((input: string, opts: LimitOptions & UnsubscribeOption & { domain?: string[]; apiKey?: boolean; json?: boolean }) =>
      cli.withStorage(async (storage) => {
        const name = credentialName(input);
        const existing = await storage.credentials.get(name);
        if (existing && opts.apiKey && !opts.domain) return issueApiKey(storage, name, existing.revokedAt, opts.json);
        if (existing)
          throw new CliError(
            `credential ${name} already exists (names of revoked credentials stay taken); add --api-key alone to issue it an API key`,
          );
        if (!opts.domain) throw new CliError("required option '--domain <domain>' not specified");
        const domains = [...new Set(opts.domain.map(domainName))];
        for (const domain of domains) {
          if (!(await storage.domains.get(domain)))
            throw new CliError(`unknown domain ${domain}: add it first with \`relay domain add ${domain}\``);
        }
        const password = newPassword();
        await storage.credentials.add({ name, username: name, passwordHash: hashPassword(password), domains });
        const limits = limitsFrom(opts);
        if (Object.keys(limits).length) await storage.limits.set(name, limits);
        if (opts.listUnsubscribe) await storage.feedback.setListUnsubscribe(name, true);
        const apiKey = opts.apiKey ? await addApiKey(storage, name) : undefined;
        if (opts.json)
          return printJson({
            name,
            username: name,
            password,
            ...(apiKey && { api_key: apiKey }),
            domains,
            limits: (await limitsView(storage, name)).limits,
            list_unsubscribe: opts.listUnsubscribe === true,
          });
        print(`Created credential ${name} for ${domains.join(', ')}.`);
        print(`  Username: ${name}`);
        print(`  Password: ${password}`);
        if (apiKey) print(`  API key:  ${apiKey}`);
        print(`Store the ${apiKey ? 'password and API key' : 'password'} now: ${apiKey ? 'they' : 'it'} will not be shown again.`);
      }),
    );

  addLimitOptions(credential.command('update <name>').description("change a credential's rate limit and quotas (counted in recipients)"))
    .option('--list-unsubscribe', 'add one-click unsubscribe headers (RFC 8058) to its messages')
    .option('--no-list-unsubscribe', 'stop adding them')
    .option('--json', 'print JSON')
    .action((name: string, opts: LimitOptions & UnsubscribeOption & { json?: boolean }) =>
      cli.withStorage(async (storage) => {
        if (!(await storage.credentials.get(name))) throw new CliError(`unknown credential ${name}`);
        const limits = limitsFrom(opts);
        if (Object.keys(limits).length === 0 && opts.listUnsubscribe === undefined) {
          throw new CliError('nothing to update: give --rate, --daily, --monthly or --[no-]list-unsubscribe');
        }
        if (Object.keys(limits).length) await storage.limits.set(name, limits);
        if (opts.listUnsubscribe !== undefined) await storage.feedback.setListUnsubscribe(name, opts.listUnsubscribe);
        const view = (await limitsView(storage, name)).limits;
        const listUnsubscribe = await storage.feedback.listUnsubscribe(name);
        if (opts.json) return printJson({ name, limits: view, list_unsubscribe: listUnsubscribe });
        if (opts.listUnsubscribe !== undefined) print(`One-click unsubscribe headers ${listUnsubscribe ? 'on' : 'off'} for ${name}.`);
        print(
          `Updated credential ${name}: rate ${view.rate ?? 'unlimited'}, daily ${view.daily ?? 'unlimited'}, monthly ${view.monthly ?? 'unlimited'}.`,
        );
      }),
    );

  credential
    .command('list')
    .description('list credentials (passwords are never shown)')
    .option('--json', 'print JSON')
    .action((opts: { json?: boolean }) =>
      cli.withStorage(async (storage) => {
        const credentials = await Promise.all(
          (await storage.credentials.list()).map(async (c) => ({
            name: c.name,
            username: c.username,
            domains: c.domains,
            created: isoTime(c.createdAt),
            revoked: isoTime(c.revokedAt),
            ...(await limitsView(storage, c.name)),
          })),
        );
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
      cli.withStorage(async (storage) => {
        const existing = await storage.credentials.get(name);
        if (!existing) throw new CliError(`unknown credential ${name}`);
        if (!(await storage.credentials.revoke(name)))
          throw new CliError(`credential ${name} was already revoked at ${formatTime(existing.revokedAt)}`);
        print(`Revoked credential ${name}.`);
      }),
    );
}

/** A new API key for the credential; only its hash is stored. */
async function addApiKey(storage: Storage, name: string): Promise<string> {
  const key = newApiKey();
  await storage.credentials.addApiKey(name, hashApiKey(key));
  return key;
}

async function issueApiKey(storage: Storage, name: string, revokedAt: number | null, json?: boolean): Promise<void> {
  if (revokedAt) throw new CliError(`credential ${name} was revoked at ${formatTime(revokedAt)}`);
  const apiKey = await addApiKey(storage, name);
  if (json) return printJson({ name, api_key: apiKey });
  print(`New API key for ${name}: ${apiKey}`);
  print('Store it now: it will not be shown again. Send it as "Authorization: Bearer KEY".');
}

/** --list-unsubscribe, and on update --no-list-unsubscribe (absent: unchanged). */
interface UnsubscribeOption {
  listUnsubscribe?: boolean;
}
