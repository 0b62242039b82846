/** `relay credential ...`: SMTP AUTH logins, the sender domains each may use, and their rate limits and quotas. */
import { InvalidArgumentError, type Command } from 'commander';
import { parseDuration } from '../config/duration.js';
import { hashApiKey, newApiKey } from '../submission/api-keys.js';
import {
  addCredential,
  issueApiKey,
  limitsView,
  newPassword,
  revokeCredential,
  updateCredentialLimits,
} from '../submission/credentials.js';
import { hashPassword } from '../submission/password.js';
import { CliError, type Cli } from './context.js';
import { addLimitOptions, type LimitOptions, limitsFrom, usedOf } from './credential-limits.js';
import { addPolicyOptions, type PolicyOptions, policyFrom, policyLines, policyView } from './credential-policy.js';
import { domainName } from '../management/names.js';
import { formatTime, isoTime, print, printJson, printTable } from './output.js';

const collect = (value: string, previous: string[] | undefined) => [...(previous ?? []), value];

export function registerCredentialCommands(program: Command, cli: Cli): void {
  const credential = program.command('credential').description('SMTP AUTH credentials');

  addPolicyOptions(
    addLimitOptions(
      credential
        .command('add <name>')
        .description('create a credential (username = name) with a random password, shown once; with --api-key also an HTTP API key')
        .option(
          '--domain <domain>',
          'sender domain it may use (repeat for several; add domains first with `relay domain add`); required for a new credential',
          collect,
        ),
    ),
    false,
  )
    .option('--api-key', 'also issue an HTTP API key, shown once; for an existing credential, issue another key')
    .option('--list-unsubscribe', 'add one-click unsubscribe headers (RFC 8058) to its messages')
    .option('--json', 'print JSON')
    .action(
      (name: string, opts: LimitOptions & PolicyOptions & UnsubscribeOption & { domain?: string[]; apiKey?: boolean; json?: boolean }) =>
        cli.withStorage(async (storage, _config, audit) => {
          const existing = await storage.credentials.get(name);
          if (existing && opts.apiKey && !opts.domain) {
            const apiKey = await issueApiKey(storage, name);
            await audit.record({ actor: cli.actor(), action: 'credential.api-key', target: name });
            if (opts.json) return printJson({ name, api_key: apiKey });
            print(`New API key for ${name}: ${apiKey}`);
            print('Store it now: it will not be shown again. Send it as "Authorization: Bearer KEY".');
            return;
          }
          if (existing)
            throw new CliError(
              `credential ${name} already exists (names of revoked credentials stay taken); add --api-key alone to issue it an API key`,
            );
          if (!opts.domain) throw new CliError("required option '--domain <domain>' not specified");
          const policy = policyFrom(
            opts,
            opts.domain.map((d) => domainName(d, 'domain')),
          );
          const added = await addCredential(storage, { name, domains: opts.domain, limits: limitsFrom(opts), policy, apiKey: opts.apiKey });
          if (opts.listUnsubscribe) await storage.feedback.setListUnsubscribe(added.name, true);
          const policyNow = await storage.credentialPolicies.get(added.name);
          await audit.record({
            actor: cli.actor(),
            action: 'credential.add',
            target: added.name,
            change: {
              domains: added.domains,
              limits: limitsFrom(opts),
              ...(Object.keys(policy).length && { policy }),
              api_key: !!added.apiKey,
              ...(opts.listUnsubscribe && { list_unsubscribe: true }),
            },
          });
          if (opts.json)
            return printJson({
              name: added.name,
              username: added.name,
              password: added.password,
              ...(added.apiKey && { api_key: added.apiKey }),
              domains: added.domains,
              limits: (await limitsView(storage, added.name)).limits,
              ...policyView(policyNow),
              list_unsubscribe: opts.listUnsubscribe === true,
            });
          print(`Created credential ${added.name} for ${added.domains.join(', ')}.`);
          for (const line of policyLines(policyNow)) print(line);
          print(`  Username: ${added.name}`);
          print(`  Password: ${added.password}`);
          if (added.apiKey) print(`  API key:  ${added.apiKey}`);
          print(
            `Store the ${added.apiKey ? 'password and API key' : 'password'} now: ${added.apiKey ? 'they' : 'it'} will not be shown again.`,
          );
        }),
    );

  addPolicyOptions(
    addLimitOptions(
      credential
        .command('update <name>')
        .description(
          "change a credential's rate limit and quotas (counted in recipients), sender identities, Reply-To domains and sandbox",
        ),
    ),
    true,
  )
    .option('--list-unsubscribe', 'add one-click unsubscribe headers (RFC 8058) to its messages')
    .option('--no-list-unsubscribe', 'stop adding them')
    .option('--json', 'print JSON')
    .action((name: string, opts: LimitOptions & PolicyOptions & UnsubscribeOption & { json?: boolean }) =>
      cli.withStorage(async (storage, _config, audit) => {
        const existing = await storage.credentials.get(name);
        if (!existing) throw new CliError(`unknown credential ${name}`);
        const limits = limitsFrom(opts);
        const policy = policyFrom(opts, existing.domains);
        if (Object.keys(limits).length === 0 && Object.keys(policy).length === 0 && opts.listUnsubscribe === undefined) {
          throw new CliError(
            'nothing to update: give --rate, --daily, --monthly, --sender, --reply-to-domain, --sandbox, --allow-recipient or --[no-]list-unsubscribe',
          );
        }
        const before = { limits: (await limitsView(storage, name)).limits, policy: policyView(await storage.credentialPolicies.get(name)) };
        const view = Object.keys(limits).length
          ? await updateCredentialLimits(storage, name, limits)
          : (await limitsView(storage, name)).limits;
        if (Object.keys(policy).length) await storage.credentialPolicies.set(name, policy);
        if (opts.listUnsubscribe !== undefined) await storage.feedback.setListUnsubscribe(name, opts.listUnsubscribe);
        const policyNow = await storage.credentialPolicies.get(name);
        const listUnsubscribe = await storage.feedback.listUnsubscribe(name);
        await audit.record({
          actor: cli.actor(),
          action: 'credential.update',
          target: name,
          change: {
            limits: { from: before.limits, to: view },
            ...(Object.keys(policy).length && { policy: { from: before.policy, to: policyView(policyNow) } }),
            ...(opts.listUnsubscribe !== undefined && { list_unsubscribe: listUnsubscribe }),
          },
        });
        if (opts.json) return printJson({ name, limits: view, ...policyView(policyNow), list_unsubscribe: listUnsubscribe });
        if (opts.listUnsubscribe !== undefined) print(`One-click unsubscribe headers ${listUnsubscribe ? 'on' : 'off'} for ${name}.`);
        print(
          `Updated credential ${name}: rate ${view.rate ?? 'unlimited'}, daily ${view.daily ?? 'unlimited'}, monthly ${view.monthly ?? 'unlimited'}.`,
        );
        for (const line of policyLines(policyNow)) print(line);
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
            ...policyView(await storage.credentialPolicies.get(c.name)),
            old_secret: c.rotation
              ? {
                  grace_until: isoTime(c.rotation.until),
                  active: c.rotation.until > Date.now(),
                  logins: c.rotation.oldLogins,
                  last_login: isoTime(c.rotation.lastOldLoginAt),
                }
              : null,
          })),
        );
        if (opts.json) return printJson(credentials);
        printTable(
          ['NAME', 'USERNAME', 'DOMAINS', 'RATE', 'TODAY', 'THIS MONTH', 'CREATED', 'REVOKED', 'OLD SECRET'],
          credentials.map((c) => [
            c.name,
            c.username,
            c.domains.join(','),
            c.limits.rate,
            usedOf(c.usage.today, c.limits.daily),
            usedOf(c.usage.this_month, c.limits.monthly),
            formatTime(c.created),
            formatTime(c.revoked),
            c.old_secret &&
              `${c.old_secret.active ? 'works until' : 'ended'} ${formatTime(c.old_secret.grace_until)}, ${c.old_secret.logins} logins`,
          ]),
          'No credentials yet: create one with `relay credential add NAME --domain DOMAIN`.',
        );
      }),
    );

  credential
    .command('revoke <name>')
    .description('revoke a credential; logins with it fail from now on, also on a running relay')
    .action((name: string) =>
      cli.withStorage(async (storage, _config, audit) => {
        await revokeCredential(storage, name);
        await audit.record({ actor: cli.actor(), action: 'credential.revoke', target: name });
        print(`Revoked credential ${name}.`);
      }),
    );

  credential
    .command('rotate <name>')
    .description('issue a new password (and with --api-key a new API key), shown once; the old ones keep working until the grace ends')
    .option('--grace <duration>', 'how long the old password and keys keep working (e.g. 1h, 24h, 7d; 0 ends them now)', grace, 86_400_000)
    .option('--api-key', 'also issue a new API key; the current keys end with the grace')
    .option('--json', 'print JSON')
    .action((name: string, opts: { grace: number; apiKey?: boolean; json?: boolean }) =>
      cli.withStorage(async (storage, _config, audit) => {
        const existing = await storage.credentials.get(name);
        if (!existing) throw new CliError(`unknown credential ${name}`);
        if (existing.revokedAt) throw new CliError(`credential ${name} was revoked at ${formatTime(existing.revokedAt)}`);
        const password = newPassword();
        const apiKey = opts.apiKey ? newApiKey() : undefined;
        const until = Date.now() + opts.grace;
        const rotation = { passwordHash: hashPassword(password), until, ...(apiKey && { apiKeyHash: hashApiKey(apiKey) }) };
        if (!(await storage.credentials.rotate(name, rotation))) throw new CliError(`credential ${name} was revoked meanwhile`);
        await audit.record({
          actor: cli.actor(),
          action: 'credential.rotate',
          target: name,
          change: { grace_until: isoTime(until), api_key: !!apiKey },
        });
        if (opts.json) return printJson({ name, password, ...(apiKey && { api_key: apiKey }), old_secret_until: isoTime(until) });
        print(`Rotated credential ${name}.`);
        print(`  Password: ${password}`);
        if (apiKey) print(`  API key:  ${apiKey}`);
        print(`The old password${apiKey ? ' and API keys' : ''} keep working until ${formatTime(until)}; logins with them are counted`);
        print('in `relay credential list`. Store the new secret now: it will not be shown again.');
      }),
    );
}

function grace(input: string): number {
  if (input.trim() === '0') return 0;
  try {
    return parseDuration(input);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

/** --list-unsubscribe, and on update --no-list-unsubscribe (absent: unchanged). */
interface UnsubscribeOption {
  listUnsubscribe?: boolean;
}
