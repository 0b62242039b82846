/** `relay sender list`: every sender identity (a domain, or one address) and the active credentials that may use it. */
import type { Command } from 'commander';
import { domainOf } from '../envelope/address.js';
import { OPEN_POLICY } from '../queue/storage.js';
import type { Cli } from './context.js';
import { printJson, printTable } from './output.js';

interface Identity {
  identity: string;
  kind: 'domain' | 'address';
  verified: boolean;
  credentials: string[];
}

export function registerSenderCommands(program: Command, cli: Cli): void {
  program
    .command('sender')
    .description('sender identities')
    .command('list')
    .description('every sending domain and sender address, and the credentials that may use it')
    .option('--json', 'print JSON')
    .action((opts: { json?: boolean }) =>
      cli.withStorage(async (storage) => {
        const domains = await storage.domains.list();
        const credentials = (await storage.credentials.list()).filter((c) => c.revokedAt === null);
        const policies = await storage.credentialPolicies.list();
        const verified = new Map(domains.map((d) => [d.name, d.verified]));
        // A credential with sender addresses may use those only, not the whole domain.
        const identities: Identity[] = domains.map((d) => ({
          identity: d.name,
          kind: 'domain',
          verified: d.verified,
          credentials: credentials
            .filter((c) => c.domains.includes(d.name) && (policies.get(c.name) ?? OPEN_POLICY).senders.length === 0)
            .map((c) => c.name),
        }));
        const addresses = new Map<string, string[]>();
        for (const c of credentials) {
          for (const address of policies.get(c.name)?.senders ?? []) addresses.set(address, [...(addresses.get(address) ?? []), c.name]);
        }
        for (const [address, users] of [...addresses].sort(([a], [b]) => a.localeCompare(b))) {
          identities.push({ identity: address, kind: 'address', verified: verified.get(domainOf(address)) ?? false, credentials: users });
        }
        if (opts.json) return printJson(identities);
        printTable(
          ['IDENTITY', 'KIND', 'VERIFIED', 'CREDENTIALS'],
          identities.map((i) => [i.identity, i.kind, i.verified ? 'yes' : 'no', i.credentials.join(',') || null]),
          'No sender identities yet: add a domain with `relay domain add DOMAIN`.',
        );
      }),
    );
}
