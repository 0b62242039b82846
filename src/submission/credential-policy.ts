/**
 * What a credential may send beyond its domains (set with `relay credential add|update`): the
 * sender identities (addresses) it may use as envelope sender and header From/Sender, the
 * domains a Reply-To may name (some receivers treat an unrelated Reply-To as a phishing
 * signal), and for a sandbox credential the only recipients it may reach. Policies are read
 * again within TTL_MS, so a change from the CLI reaches running relays without a restart.
 */
import { domainOf, normaliseAddress } from '../envelope/address.js';
import type { CredentialPolicy, CredentialPolicyStore, CredentialRecord } from '../queue/storage.js';
import { parseMailboxList } from './header-address.js';
import { reply, type SmtpReply } from './replies.js';

const TTL_MS = 2000;

export class ActivePolicies {
  private readonly entries = new Map<string, { policy: CredentialPolicy; until: number }>();

  constructor(private readonly store: Pick<CredentialPolicyStore, 'get'>) {}

  async get(credential: string): Promise<CredentialPolicy> {
    const now = Date.now();
    const cached = this.entries.get(credential);
    if (cached && cached.until > now) return cached.policy;
    const policy = await this.store.get(credential);
    if (this.entries.size > 10_000) this.entries.clear();
    this.entries.set(credential, { policy, until: now + TTL_MS });
    return policy;
  }
}

/** With sender identities set, `address` must be one of them (550 5.7.1 naming it). */
export function checkSenderIdentity(
  policy: CredentialPolicy,
  credential: CredentialRecord,
  address: string,
  field: 'envelope sender' | 'header From' | 'header Sender',
): SmtpReply | undefined {
  if (policy.senders.length === 0 || policy.senders.includes(normaliseAddress(address))) return undefined;
  return reply(550, '5.7.1', `sender <${address}> is not a sender identity of credential ${credential.name} (${field})`, field);
}

/** With Reply-To domains set, every Reply-To address must be in one of them; `values` are the Reply-To fields. */
export function checkReplyTo(policy: CredentialPolicy, credential: CredentialRecord, values: string[]): SmtpReply | undefined {
  if (policy.replyToDomains.length === 0) return undefined;
  const refuse = (text: string) => reply(550, '5.7.1', text, 'header Reply-To');
  if (values.length > 1) return refuse('message has more than one Reply-To header');
  if (values.length === 0) return undefined;
  const parsed = parseMailboxList(values[0]!);
  if ('error' in parsed) return refuse(`Reply-To header ${parsed.error}`);
  const outside = parsed.addresses.find((a) => !policy.replyToDomains.includes(domainOf(a)));
  if (!outside) return undefined;
  return refuse(
    `Reply-To <${outside}> is outside the domains credential ${credential.name} may name there (${policy.replyToDomains.join(', ')})`,
  );
}

/** A sandbox credential reaches only the addresses and @domains of its allowlist (550 5.7.1 "sandbox"). */
export function checkSandboxRecipient(policy: CredentialPolicy, credential: CredentialRecord, address: string): SmtpReply | undefined {
  if (!policy.sandbox) return undefined;
  const allowed = policy.allowedRecipients;
  if (allowed.includes(normaliseAddress(address)) || allowed.includes(`@${domainOf(address)}`)) return undefined;
  return reply(
    550,
    '5.7.1',
    `recipient <${address}> is not on the allowlist of sandbox credential ${credential.name}`,
    'sandbox recipient',
  );
}
