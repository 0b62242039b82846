/**
 * The sender identity, Reply-To and sandbox options of `relay credential add|update`
 * (--sender, --reply-to-domain, --sandbox, --allow-recipient; on update each list option
 * replaces the list and --no-... clears it), and the policy view the credential commands print.
 */
import type { Command } from 'commander';
import { domainOf } from '../envelope/address.js';
import type { CredentialPolicy } from '../queue/storage.js';
import { CliError } from './context.js';
import { domainName, emailAddress } from '../management/names.js';

const collect = (value: string, previous: string[] | undefined) => [...(previous ?? []), value];

export interface PolicyOptions {
  sender?: string[] | false;
  replyToDomain?: string[] | false;
  sandbox?: boolean;
  allowRecipient?: string[] | false;
}

export function addPolicyOptions(command: Command, update: boolean): Command {
  command
    .option('--sender <address>', 'an address it may send as (envelope and header From/Sender); repeat for several', collect)
    .option('--reply-to-domain <domain>', 'a domain a Reply-To may name; repeat for several (default: any Reply-To)', collect)
    .option('--sandbox', 'a sandbox credential: sends only to the --allow-recipient list')
    .option('--allow-recipient <address|@domain>', 'a recipient (or a whole @domain) a sandbox credential may send to; repeat', collect);
  if (update) {
    command
      .option('--no-sender', 'drop the sender identities: any address of its domains')
      .option('--no-reply-to-domain', 'any Reply-To again')
      .option('--no-sandbox', 'no longer a sandbox credential')
      .option('--no-allow-recipient', 'empty the sandbox allowlist');
  }
  return command;
}

const list = (given: string[] | false | undefined, parse: (item: string) => string) =>
  given === undefined ? undefined : given === false ? [] : [...new Set(given.map(parse))];

/** Only the policy fields given on the command line; senders must be in the credential's `domains`. */
export function policyFrom(opts: PolicyOptions, domains: string[]): Partial<CredentialPolicy> {
  const change: Partial<CredentialPolicy> = {};
  const senders = list(opts.sender, (a) => emailAddress(a).toLowerCase());
  if (senders) {
    const outside = senders.find((s) => !domains.includes(domainOf(s)));
    if (outside) throw new CliError(`sender ${outside} is not in the credential's domains (${domains.join(', ')})`);
    change.senders = senders;
  }
  const replyTo = list(opts.replyToDomain, domainName);
  if (replyTo) change.replyToDomains = replyTo;
  if (opts.sandbox !== undefined) change.sandbox = opts.sandbox;
  const allowed = list(opts.allowRecipient, (entry) =>
    entry.startsWith('@') ? `@${domainName(entry.slice(1))}` : emailAddress(entry).toLowerCase(),
  );
  if (allowed) change.allowedRecipients = allowed;
  return change;
}

export const policyView = (p: CredentialPolicy) => ({
  senders: p.senders,
  reply_to_domains: p.replyToDomains,
  sandbox: p.sandbox,
  allowed_recipients: p.allowedRecipients,
});

/** One line per restriction in force, for people. */
export function policyLines(p: CredentialPolicy): string[] {
  return [
    ...(p.senders.length ? [`  Senders: ${p.senders.join(', ')}`] : []),
    ...(p.replyToDomains.length ? [`  Reply-To domains: ${p.replyToDomains.join(', ')}`] : []),
    ...(p.sandbox ? [`  Sandbox: sends only to ${p.allowedRecipients.join(', ') || 'nobody yet (add --allow-recipient)'}`] : []),
  ];
}
